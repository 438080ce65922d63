#!/usr/bin/env python3
"""mm_layout_check: a float64 mirror of runtime.cu's mm(), which expresses
row-major products as column-major cuBLASLt calls, run against numpy under
cuBLASLt's layout rules (a layout describes the matrix as stored, before
its transpose).  A design check that needs no GPU: keep it in step with mm()
when that changes.  Run: .venv/bin/python tests/cuda/mm_layout_check.py"""
import sys

import numpy as np

errs = []
rng=np.random.default_rng(1)
def colmat(buf, rows, cols, ld, off=0):
    # column-major view: element (r,c) at off + c*ld + r
    return np.array([[buf[off + c*ld + r] for c in range(cols)] for r in range(rows)])
def lt(m,n,k,ta,tb,A,lda,B,ldb,ldd,batch=1,sA=0,sB=0,sD=0):
    D=np.zeros(max(1,sD*batch if batch>1 else ldd*n)+ldd*n)
    for bi in range(batch):
        Am=colmat(A, k if ta else m, m if ta else k, lda, bi*sA)
        Bm=colmat(B, n if tb else k, k if tb else n, ldb, bi*sB)
        if ta: Am=Am.T
        if tb: Bm=Bm.T
        Dm=Am@Bm
        for r in range(m):
            for c in range(n):
                D[bi*sD + c*ldd + r]=Dm[r,c]
    return D
def mm(kind, A, B, M, N, K, batch=1, sa=0, sb=0, sd=0):
    m,n,k=N,M,K
    if kind=='nt': ta,lda,tb,ldb=1,K,0,K
    if kind=='nn': ta,lda,tb,ldb=0,N,0,K
    if kind=='tn': ta,lda,tb,ldb=0,N,1,M
    return lt(m,n,k,ta,tb,B,lda,A,ldb,N,batch,sb,sa,sd)
M,N,K=5,7,3
for kind in ['nt','nn','tn']:
    if kind=='nt': a=rng.standard_normal((M,K)); b=rng.standard_normal((N,K)); ref=a@b.T
    if kind=='nn': a=rng.standard_normal((M,K)); b=rng.standard_normal((K,N)); ref=a@b
    if kind=='tn': a=rng.standard_normal((K,M)); b=rng.standard_normal((K,N)); ref=a.T@b
    D=mm(kind,a.ravel(),b.ravel(),M,N,K)
    got=D[:M*N].reshape(M,N)
    e = np.abs(got-ref).max(); errs.append(e)
    print(kind, e)
# batched attention: S = Q K^T, with batch strides
BH,T,hs=3,4,2
q=rng.standard_normal((BH,T,hs)); k=rng.standard_normal((BH,T,hs))
D=mm('nt',q.ravel(),k.ravel(),T,T,hs,BH,T*hs,T*hs,T*T)
e = np.abs(D[:BH*T*T].reshape(BH,T,T)-q@k.transpose(0,2,1)).max(); errs.append(e)
print('batched nt', e)
p=rng.standard_normal((BH,T,T)); dy=rng.standard_normal((BH,T,hs))
D=mm('tn',p.ravel(),dy.ravel(),T,hs,T,BH,T*T,T*hs,T*hs)
e = np.abs(D[:BH*T*hs].reshape(BH,T,hs)-p.transpose(0,2,1)@dy).max(); errs.append(e)
print('batched tn (dV=P^T dY)', e)
v=rng.standard_normal((BH,T,hs))
D=mm('nn',p.ravel(),v.ravel(),T,hs,T,BH,T*T,T*hs,T*hs)
e = np.abs(D[:BH*T*hs].reshape(BH,T,hs)-p@v).max(); errs.append(e)
print('batched nn (Y=P V)', e)
sys.exit(0 if all(e < 1e-9 for e in errs) else "mm_layout_check: MISMATCH %s" % errs)
