#!/usr/bin/env python3
"""flash_tiles_check: a float64 numpy mirror of flash.cu's tiling (64-row
tiles, causal and end-of-sequence masks, online softmax, the dK/dV and dQ
backward kernels) against direct causal attention, for T below, at and
across the tile size.  A design check that needs no GPU: keep it in step
with flash.cu.  Run: .venv/bin/python tests/cuda/flash_tiles_check.py"""
import sys

import numpy as np
rng=np.random.default_rng(2)
HS=64; BR=BC=64
def ref(q,k,v,dy):
    T=q.shape[0]; s=q@k.T/np.sqrt(HS); s[np.triu_indices(T,1)]=-np.inf
    m=s.max(1,keepdims=True); p=np.exp(s-m); l=p.sum(1,keepdims=True); P=p/l
    y=P@v; lse=(m+np.log(l))[:,0]
    dP=dy@v.T; D=(P*dP).sum(1,keepdims=True); dS=P*(dP-D)/np.sqrt(HS)
    return y,lse,dS@k,dS.T@q,P.T@dy
def tile(x,r0,T):
    t=np.zeros((BR,HS)); n=max(0,min(T,r0+BR)-r0); t[:n]=x[r0:r0+n]; return t
def fwd(q,k,v):
    T=q.shape[0]; nq=(T+BR-1)//BR; y=np.zeros((T,HS)); lse=np.zeros(T); sc=1/np.sqrt(HS)
    for qt in range(nq):
        q0=qt*BR; sQ=tile(q,q0,T); m=np.full(BR,-np.inf); l=np.zeros(BR); O=np.zeros((BR,HS))
        for kt in range(qt+1):
            k0=kt*BC; sK=tile(k,k0,T); sV=tile(v,k0,T); S=sQ@sK.T
            i=q0+np.arange(BR)[:,None]; j=k0+np.arange(BC)[None,:]
            S=np.where((j<=i)&(j<T), S*sc, -np.inf)
            mn=np.maximum(m,S.max(1)); a=np.exp(m-mn); P=np.exp(S-mn[:,None])
            l=l*a+P.sum(1); m=mn; O=O*a[:,None]+P@sV
        for r in range(BR):
            if q0+r<T: y[q0+r]=O[r]/l[r]; lse[q0+r]=m[r]+np.log(l[r])
    return y,lse
def bwd(q,k,v,dy,y,lse):
    T=q.shape[0]; sc=1/np.sqrt(HS); D=(dy*y).sum(1); n=(T+BR-1)//BR
    dq=np.zeros((T,HS)); dk=np.zeros((T,HS)); dv=np.zeros((T,HS))
    for kt in range(n):
        k0=kt*BC; sK=tile(k,k0,T); sV=tile(v,k0,T); DK=np.zeros((BC,HS)); DV=np.zeros((BC,HS))
        qt=kt
        while qt*BR<T:
            q0=qt*BR; sQ=tile(q,q0,T); sO=tile(dy,q0,T)
            sL=np.array([lse[q0+c] if q0+c<T else 0 for c in range(BR)])
            sD=np.array([D[q0+c] if q0+c<T else 0 for c in range(BR)])
            St=sK@sQ.T  # keys x queries
            j=k0+np.arange(BC)[:,None]; i=q0+np.arange(BR)[None,:]
            Pt=np.where((i<T)&(j<=i)&(j<T), np.exp(St*sc-sL[None,:]), 0)
            DV+=Pt@sO; dPt=sV@sO.T; dSt=Pt*(dPt-sD[None,:])*sc; DK+=dSt@sQ
            qt+=1
        for r in range(BC):
            if k0+r<T: dk[k0+r]=DK[r]; dv[k0+r]=DV[r]
    for qt in range(n):
        q0=qt*BR; sQ=tile(q,q0,T); sO=tile(dy,q0,T); DQ=np.zeros((BR,HS))
        for kt in range(qt+1):
            k0=kt*BC; sK=tile(k,k0,T); sV=tile(v,k0,T)
            i=q0+np.arange(BR)[:,None]; j=k0+np.arange(BC)[None,:]
            L=np.array([lse[x] if x<T else 0 for x in range(q0,q0+BR)])[:,None]
            Dl=np.array([D[x] if x<T else 0 for x in range(q0,q0+BR)])[:,None]
            P=np.where((i<T)&(j<=i)&(j<T), np.exp(sQ@sK.T*sc-L), 0)
            dP=sO@sV.T; dS=P*(dP-Dl)*sc; DQ+=dS@sK
        for r in range(BR):
            if q0+r<T: dq[q0+r]=DQ[r]
    return dq,dk,dv
errs = []
for T in [7,64,65,200]:
    q,k,v,dy=(rng.standard_normal((T,HS)) for _ in range(4))
    y,lse=fwd(q,k,v); dq,dk,dv=bwd(q,k,v,dy,y,lse)
    ry,rl,rdq,rdk,rdv=ref(q,k,v,dy)
    e = max(np.abs(a-b).max() for a,b in [(y,ry),(lse,rl),(dq,rdq),(dk,rdk),(dv,rdv)])
    errs.append(e)
    print(T, e)
sys.exit(0 if all(e < 1e-9 for e in errs) else "flash_tiles_check: MISMATCH %s" % errs)
