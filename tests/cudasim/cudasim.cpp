/* cudasim: the CPU side of the CUDA emulator (see cudasim.h): a fiber per
 * CUDA thread with barrier scheduling, and the part of the CUDA runtime
 * API the engine calls, over host memory.  Streams run their work at once,
 * in order.  Device memory is malloc'd, filled with 0xff bytes (a NaN in
 * bf16 and float32) so that reading what was never written shows, and
 * every copy is checked against the allocation it touches. */
#include "cudasim.h"
#include "count.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <ucontext.h>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

namespace gsim {

thread_local lane_state cur;

enum { RUN, WAIT_BLOCK, WAIT_WARP, DONE };

/* Switching fibers: on x86-64 a few instructions that keep the
 * callee-saved registers (swapcontext also makes two system calls a
 * switch, which made runs several times slower); elsewhere ucontext. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define GSIM_ASAN 1 /* tell AddressSanitizer about each stack switch */
#else
#define GSIM_ASAN 0
#endif

#if defined(__x86_64__)
extern "C" void gsim_switch(void **save_sp, void *load_sp);
asm(".text\n"
    ".globl gsim_switch\n"
    ".type gsim_switch, @function\n"
    "gsim_switch:\n"
    "\tpushq %rbp\n\tpushq %rbx\n\tpushq %r12\n\tpushq %r13\n\tpushq %r14\n\tpushq %r15\n"
    "\tmovq %rsp, (%rdi)\n"
    "\tmovq %rsi, %rsp\n"
    "\tpopq %r15\n\tpopq %r14\n\tpopq %r13\n\tpopq %r12\n\tpopq %rbx\n\tpopq %rbp\n"
    "\tret\n"
    ".size gsim_switch, .-gsim_switch\n");
struct context {
	void *sp;
	const void *stack; /* bottom and size, for AddressSanitizer */
	size_t size;
	void *fake;
};
#else
struct context {
	ucontext_t uc;
	const void *stack;
	size_t size;
	void *fake;
};
#endif

struct fiber {
	context ctx;
	int state;
	lane_state idx;
};

struct block_sched {
	context main;
	std::vector<fiber> f;
	int running;
	const std::function<void()> *body;
	const char *name;
	unsigned char *smem;
	size_t smem_bytes;
	std::vector<uint64_t> xch; /* 32 slots a warp for shuffles */
	char *stacks;
	size_t stack_bytes, n_stacks;
};

static thread_local block_sched S;
static cudaError_t last_error = cudaSuccess;
static std::map<const void *, size_t> func_smem_limit;
static std::map<uintptr_t, size_t> allocs; /* device allocations: start -> bytes */
static size_t alloc_bytes;
static const size_t TOTAL_BYTES = 80ull << 30;
static const size_t STACK_BYTES = 256 << 10;

/* ---- counting (count.h) ---- */

[[noreturn]] static void fatal(const char *fmt, ...);

int counting;                     /* between gsim_count(1) and (0) */
static int count_mode = -1;       /* GSIM_COUNT=1: page-aligned memory */
static volatile int armed;        /* device memory protected: in a launch */
static std::vector<gsim_rec> recs;

static int count_enabled(void)
{
	if (count_mode < 0) {
		const char *c = getenv("GSIM_COUNT");
		count_mode = c && strcmp(c, "0") != 0;
	}
	return count_mode;
}

static size_t pages(size_t n) { return (n + 4095) / 4096 * 4096; }

static void add_rec(int kind, const char *name, double rd, double wr, double flops)
{
	gsim_rec r;
	snprintf(r.name, sizeof r.name, "%s", name);
	r.kind = kind;
	r.rd = rd;
	r.wr = wr;
	r.flops = flops;
	recs.push_back(r);
}

void count_flops(double f)
{
	if (armed)
		recs.back().flops += f;
}

static void protect_all(int prot)
{
	for (auto &a : allocs)
		if (mprotect((void *)a.first, pages(a.second), prot) != 0)
			fatal("mprotect of %zu bytes of device memory failed", a.second);
}

/* A touched page of device memory during a launch: count it, once as read
 * and once as written, and let the access through. */
static void on_fault(int sig, siginfo_t *si, void *ucv)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	(void)sig;
	if (armed) {
		auto it = allocs.upper_bound(a);
		if (it != allocs.begin() && a < (--it)->first + pages(it->second)) {
			const ucontext_t *uc = (const ucontext_t *)ucv;
			int wr = (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;
			if (mprotect((void *)(a & ~(uintptr_t)4095), 4096,
			             wr ? PROT_READ | PROT_WRITE : PROT_READ) != 0) {
				static const char m[] = "cudasim: mprotect failed while counting (too "
				                        "many mappings: raise vm.max_map_count)\n";
				ssize_t w = write(2, m, sizeof m - 1);
				(void)w;
				_exit(3);
			}
			(wr ? recs.back().wr : recs.back().rd) += 4096;
			return;
		}
	}
	signal(SIGSEGV, SIG_DFL); /* not ours: fault again, as without counting */
}

static void counted_launch(const char *name, const std::function<void()> &run)
{
	if (!counting) {
		run();
		return;
	}
	add_rec(GSIM_KERNEL, name, 0, 0, 0);
	protect_all(PROT_NONE);
	armed = 1;
	run();
	armed = 0;
	protect_all(PROT_READ | PROT_WRITE);
}

[[noreturn]] static void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("cudasim: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	fflush(stdout);
	_exit(3); /* from inside a fiber: no atexit work (nor leak checks) */
}

static void ctx_switch(context *save, context *load, bool exiting = false)
{
#if GSIM_ASAN
	__sanitizer_start_switch_fiber(exiting ? NULL : &save->fake, load->stack, load->size);
#else
	(void)exiting;
#endif
#if defined(__x86_64__)
	gsim_switch(&save->sp, load->sp);
#else
	swapcontext(&save->uc, &load->uc);
#endif
#if GSIM_ASAN
	__sanitizer_finish_switch_fiber(save->fake, NULL, NULL);
#endif
}

static void trampoline(void)
{
#if GSIM_ASAN
	__sanitizer_finish_switch_fiber(NULL, &S.main.stack, &S.main.size);
#endif
	(*S.body)();
	S.f[S.running].state = DONE;
	context dead;
	ctx_switch(&dead, &S.main, true); /* never resumed */
	abort();
}

/* A fiber that starts in trampoline on the given stack. */
static void ctx_make(context *c, char *stack, size_t bytes)
{
#if GSIM_ASAN
	/* the last fiber on this stack left its frames' red zones behind */
	__asan_unpoison_memory_region(stack, bytes);
#endif
#if defined(__x86_64__)
	/* 16-byte aligned; six saved registers, then trampoline as the return
	 * address, so that it starts with the stack as after a call */
	uintptr_t top = ((uintptr_t)(stack + bytes) & ~(uintptr_t)15) - 64;
	void **sp = (void **)top;
	for (int i = 0; i < 6; i++)
		sp[i] = 0;
	sp[6] = (void *)trampoline;
	sp[7] = 0;
	c->sp = sp;
	c->stack = stack;
	c->size = bytes;
#else
	c->stack = stack;
	c->size = bytes;
	getcontext(&c->uc);
	c->uc.uc_stack.ss_sp = stack;
	c->uc.uc_stack.ss_size = bytes;
	c->uc.uc_link = NULL;
	makecontext(&c->uc, trampoline, 0);
#endif
}

static void yield_with(int state)
{
	if (S.f.empty())
		fatal("a barrier outside a kernel");
	fiber &me = S.f[S.running];
	me.state = state;
	ctx_switch(&me.ctx, &S.main);
}

void sync_block(void) { yield_with(WAIT_BLOCK); }
void sync_warp(void) { yield_with(WAIT_WARP); }

uint64_t exchange(uint64_t v, int src_lane)
{
	int t = S.running, w = t / 32;
	S.xch[(size_t)w * 32 + t % 32] = v;
	sync_warp();
	int src = w * 32 + src_lane;
	if (src_lane < 0 || src_lane >= 32 || src >= (int)S.f.size())
		fatal("%s: shuffle from lane %d, outside the warp", S.name, src_lane);
	if (S.f[src].state == DONE)
		fatal("%s: shuffle from lane %d, which has exited", S.name, src_lane);
	uint64_t r = S.xch[(size_t)src];
	sync_warp();
	return r;
}

void *dyn_smem(void)
{
	return S.smem;
}

static int order_mode(void)
{
	static int mode = -1;
	if (mode < 0) {
		const char *o = getenv("GSIM_ORDER");
		mode = !o || !strcmp(o, "fwd") ? 0 : !strcmp(o, "rev") ? 1 : !strcmp(o, "shuffle") ? 2 : 3;
		if (mode == 3)
			fatal("GSIM_ORDER must be fwd, rev or shuffle");
	}
	return mode;
}

static void run_block(const dim3 &bid, const dim3 &grid, const dim3 &block, std::mt19937 &rng)
{
	int n = (int)(block.x * block.y * block.z);
	std::vector<int> order((size_t)n);
	for (int i = 0; i < n; i++)
		order[(size_t)i] = order_mode() == 1 ? n - 1 - i : i;
	memset(S.smem, 0xff, S.smem_bytes);
	std::fill(S.xch.begin(), S.xch.end(), 0);
	for (int i = 0; i < n; i++) {
		fiber &f = S.f[(size_t)i];
		ctx_make(&f.ctx, S.stacks + (size_t)i * S.stack_bytes, S.stack_bytes);
		f.state = RUN;
		f.idx.tid = make_uint3(i % block.x, i / block.x % block.y, i / (block.x * block.y));
		f.idx.bid = make_uint3(bid.x, bid.y, bid.z);
		f.idx.bdim = block;
		f.idx.gdim = grid;
	}
	for (;;) {
		if (order_mode() == 2)
			std::shuffle(order.begin(), order.end(), rng);
		for (int k = 0; k < n; k++) {
			int i = order[(size_t)k];
			if (S.f[(size_t)i].state != RUN)
				continue;
			S.running = i;
			cur = S.f[(size_t)i].idx;
			ctx_switch(&S.main, &S.f[(size_t)i].ctx);
		}
		/* everyone is at a barrier or done */
		int alive = 0, at_block = 0, released = 0;
		for (int i = 0; i < n; i++) {
			int st = S.f[(size_t)i].state;
			alive += st != DONE;
			at_block += st == WAIT_BLOCK;
		}
		if (alive == 0)
			break;
		if (at_block == alive) {
			for (auto &f : S.f)
				if (f.state == WAIT_BLOCK)
					f.state = RUN;
			continue;
		}
		for (int w = 0; w * 32 < n; w++) {
			int live = 0, waiting = 0;
			for (int i = w * 32; i < n && i < w * 32 + 32; i++) {
				live += S.f[(size_t)i].state != DONE;
				waiting += S.f[(size_t)i].state == WAIT_WARP;
			}
			if (waiting > 0 && waiting == live) {
				for (int i = w * 32; i < n && i < w * 32 + 32; i++)
					if (S.f[(size_t)i].state == WAIT_WARP)
						S.f[(size_t)i].state = RUN;
				released = 1;
			}
		}
		if (!released)
			fatal("%s: deadlock in block (%u,%u,%u): %d threads live, %d at __syncthreads, the "
			      "rest at a warp barrier with part of their warp elsewhere",
			      S.name, bid.x, bid.y, bid.z, alive, at_block);
	}
}

void run_grid(const cfg &c, const char *name, const void *fn, const std::function<void()> &body)
{
	size_t nthr = (size_t)c.block.x * c.block.y * c.block.z;
	size_t limit = 48 << 10;
	auto it = func_smem_limit.find(fn);
	if (it != func_smem_limit.end())
		limit = it->second;
	if (nthr == 0 || nthr > 1024 || c.block.z > 64 || c.grid.x == 0 || c.grid.y == 0 ||
	    c.grid.z == 0 || c.grid.y > 65535 || c.grid.z > 65535 || c.grid.x > 0x7fffffffu) {
		fprintf(stderr, "cudasim: %s: bad launch: grid (%u,%u,%u) block (%u,%u,%u)\n", name,
		        c.grid.x, c.grid.y, c.grid.z, c.block.x, c.block.y, c.block.z);
		last_error = cudaErrorInvalidConfiguration;
		return;
	}
	if (c.smem > limit) {
		fprintf(stderr, "cudasim: %s: %zu bytes of dynamic shared memory over the limit %zu\n",
		        name, c.smem, limit);
		last_error = cudaErrorInvalidValue;
		return;
	}
	if (S.n_stacks < nthr) {
		if (S.stacks)
			munmap(S.stacks, S.n_stacks * STACK_BYTES);
		S.stacks = (char *)mmap(NULL, nthr * STACK_BYTES, PROT_READ | PROT_WRITE,
		                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (S.stacks == MAP_FAILED)
			fatal("cannot map fiber stacks");
		S.n_stacks = nthr;
		S.stack_bytes = STACK_BYTES;
	}
	S.f.assign(nthr, fiber());
	S.xch.assign((nthr + 31) / 32 * 32, 0);
	S.body = &body;
	S.name = name;
	S.smem_bytes = c.smem;
	S.smem = (unsigned char *)malloc(c.smem ? c.smem : 1);
	std::mt19937 rng(12345);
	counted_launch(name, [&]() {
		for (unsigned z = 0; z < c.grid.z; z++)
			for (unsigned y = 0; y < c.grid.y; y++)
				for (unsigned x = 0; x < c.grid.x; x++)
					run_block(dim3(x, y, z), c.grid, c.block, rng);
	});
	free(S.smem);
	S.smem = NULL;
	S.f.clear();
}

/* The allocation holding [p, p+n), or die naming what touched it. */
static void check_device(const void *p, size_t n, const char *what)
{
	uintptr_t a = (uintptr_t)p;
	auto it = allocs.upper_bound(a);
	if (it == allocs.begin())
		fatal("%s: %p is not device memory", what, p);
	--it;
	if (a + n > it->first + it->second)
		fatal("%s: %zu bytes at %p run past the end of a %zu-byte allocation (at offset %zu)",
		      what, n, p, it->second, (size_t)(a - it->first));
}

static int is_device(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	auto it = allocs.upper_bound(a);
	if (it == allocs.begin())
		return 0;
	--it;
	return a < it->first + it->second;
}

static void check_copy(void *dst, const void *src, size_t n, cudaMemcpyKind k)
{
	if (k == cudaMemcpyHostToDevice || k == cudaMemcpyDeviceToDevice)
		check_device(dst, n, "copy to the device");
	if (k == cudaMemcpyDeviceToHost || k == cudaMemcpyDeviceToDevice)
		check_device(src, n, "copy from the device");
	if (k == cudaMemcpyHostToDevice && is_device(src))
		fatal("host-to-device copy from device memory");
	if (k == cudaMemcpyDeviceToHost && is_device(dst))
		fatal("device-to-host copy into device memory");
}

} // namespace gsim

using namespace gsim;

extern "C" {

/* For the stand-in cuBLASLt: [p, p+n) must be device memory. */
void gsim_check_range(const void *p, size_t n, const char *what)
{
	check_device(p, n, what);
}

cudaError_t cudaGetLastError(void)
{
	cudaError_t e = last_error;
	last_error = cudaSuccess;
	return e;
}

cudaError_t cudaPeekAtLastError(void) { return last_error; }

const char *cudaGetErrorString(cudaError_t e)
{
	switch (e) {
	case cudaSuccess: return "no error";
	case cudaErrorMemoryAllocation: return "out of memory";
	case cudaErrorInvalidValue: return "invalid argument";
	case cudaErrorInvalidConfiguration: return "invalid configuration argument";
	case cudaErrorNoDevice: return "no CUDA-capable device is detected";
	default: return "cudasim: unexpected error";
	}
}

cudaError_t cudaGetDeviceCount(int *n)
{
	*n = 1;
	return cudaSuccess;
}

cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaGetDevice(int *d)
{
	*d = 0;
	return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties_v2(cudaDeviceProp *p, int d)
{
	if (d != 0)
		return cudaErrorInvalidDevice;
	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "cudasim (CPU emulation)");
	p->major = 9;
	p->minor = 0;
	p->multiProcessorCount = 2;
	p->totalGlobalMem = TOTAL_BYTES;
	p->sharedMemPerBlock = 48 << 10;
	p->sharedMemPerBlockOptin = 227 << 10;
	p->maxThreadsPerBlock = 1024;
	p->warpSize = 32; // (the struct member, not the device constant)
	return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d)
{
	return cudaGetDeviceProperties_v2(p, d);
}

cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d)
{
	(void)d;
	switch (a) {
	case cudaDevAttrComputeCapabilityMajor: *v = 9; break;
	case cudaDevAttrComputeCapabilityMinor: *v = 0; break;
	case cudaDevAttrMultiProcessorCount: *v = 2; break;
	case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = 227 << 10; break;
	default: *v = 0; break;
	}
	return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v)
{
	*v = 13000;
	return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v)
{
	*v = 13000;
	return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *fr, size_t *tot)
{
	*tot = TOTAL_BYTES;
	*fr = TOTAL_BYTES - alloc_bytes;
	return cudaSuccess;
}

/* GSIM_LAZY=1: device memory is mapped, not filled, so that a program
 * can plan a full-size model (to count its memory) without the host
 * holding it. */
static int lazy_memory(void)
{
	static int lazy = -1;
	if (lazy < 0) {
		const char *l = getenv("GSIM_LAZY");
		lazy = l && strcmp(l, "0") != 0;
	}
	return lazy;
}

cudaError_t cudaMalloc(void **p, size_t n)
{
	size_t rounded = (n + 4095) / 4096 * 4096;
	*p = NULL;
	if (n <= TOTAL_BYTES - alloc_bytes) {
		if (lazy_memory()) {
			void *m = mmap(NULL, rounded, PROT_READ | PROT_WRITE,
			               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			*p = m == MAP_FAILED ? NULL : m;
		} else {
#if GSIM_ASAN
			if (count_enabled())
				fatal("GSIM_COUNT does not work under AddressSanitizer");
			/* exactly n bytes, so that AddressSanitizer sees a kernel
			 * step past the end (malloc aligns to 16, enough for uint4) */
			*p = malloc(n ? n : 1);
#else
			/* counting protects whole pages: no two allocations share one */
			*p = aligned_alloc(count_enabled() ? 4096 : 256, rounded);
#endif
			if (*p)
				memset(*p, 0xff, n);
		}
	}
	if (!*p) {
		last_error = cudaErrorMemoryAllocation;
		return cudaErrorMemoryAllocation;
	}
	allocs[(uintptr_t)*p] = n;
	alloc_bytes += n;
	return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
	if (!p)
		return cudaSuccess;
	auto it = allocs.find((uintptr_t)p);
	if (it == allocs.end())
		fatal("cudaFree of %p, which cudaMalloc did not return", p);
	size_t n = it->second;
	alloc_bytes -= n;
	allocs.erase(it);
	if (lazy_memory())
		munmap(p, (n + 4095) / 4096 * 4096);
	else
		free(p);
	return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t n)
{
	*p = malloc(n ? n : 1);
	return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaFreeHost(void *p)
{
	free(p);
	return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind k)
{
	check_copy(dst, src, n, k);
	if (counting) {
		int d = is_device(dst), sr = is_device(src);
		if (d && sr)
			add_rec(GSIM_COPY, "copy", (double)n, (double)n, 0);
		else if (d)
			add_rec(GSIM_H2D, "copy to device", (double)n, 0, 0);
		else if (sr)
			add_rec(GSIM_D2H, "copy to host", (double)n, 0, 0);
	}
	memmove(dst, src, n);
	return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind k, cudaStream_t s)
{
	(void)s;
	return cudaMemcpy(dst, src, n, k);
}

cudaError_t cudaMemset(void *p, int v, size_t n)
{
	check_device(p, n, "cudaMemset");
	if (counting)
		add_rec(GSIM_MEMSET, "memset", 0, (double)n, 0);
	memset(p, v, n);
	return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s)
{
	(void)s;
	return cudaMemset(p, v, n);
}

static char stream_tokens[64];
static int n_streams;

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
	(void)flags;
	*s = (cudaStream_t)&stream_tokens[n_streams++ % 64];
	return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamDestroy(cudaStream_t s)
{
	(void)s;
	return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
	(void)s;
	return cudaSuccess;
}
/* Work runs when queued: a stream is always done. */
cudaError_t cudaStreamQuery(cudaStream_t s)
{
	(void)s;
	return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }

/* Events: tokens in stream order; no clock, so elapsed times are 0. */
cudaError_t cudaEventCreate(cudaEvent_t *e)
{
	*e = (cudaEvent_t)malloc(1);
	return *e ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaEventDestroy(cudaEvent_t e)
{
	free(e);
	return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
	(void)e;
	(void)s;
	if (counting)
		add_rec(GSIM_EVENT, "event", 0, 0, 0);
	return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags)
{
	(void)flags;
	return cudaEventCreate(e);
}
/* Work runs when queued: what the event marks is already done. */
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags)
{
	(void)s;
	(void)e;
	(void)flags;
	return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e)
{
	(void)e;
	return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b)
{
	(void)a;
	(void)b;
	*ms = 0;
	return cudaSuccess;
}

void gsim_count(int on)
{
	static int installed;
	if (on && !count_enabled())
		fatal("gsim_count needs GSIM_COUNT=1 before the first cudaMalloc");
	if (on && !installed) {
		struct sigaction sa;
		stack_t st;
		st.ss_size = 1 << 16;
		st.ss_sp = malloc(st.ss_size);
		st.ss_flags = 0;
		if (!st.ss_sp || sigaltstack(&st, NULL) != 0)
			fatal("no signal stack for counting");
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = on_fault;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGSEGV, &sa, NULL) != 0)
			fatal("cannot catch SIGSEGV for counting");
		installed = 1;
	}
	if (on)
		recs.clear();
	counting = on;
}

size_t gsim_count_take(const struct gsim_rec **r)
{
	*r = recs.data();
	return recs.size();
}

void gsim_count_gemm(const char *name, double flops, double rd, double wr)
{
	if (counting)
		add_rec(GSIM_GEMM, name, rd, wr, flops);
}

cudaError_t cudaFuncSetAttribute(const void *fn, cudaFuncAttribute a, int v)
{
	if (a == cudaFuncAttributeMaxDynamicSharedMemorySize) {
		if (v < 0 || v > 227 << 10)
			return last_error = cudaErrorInvalidValue;
		func_smem_limit[fn] = (size_t)v;
	}
	return cudaSuccess;
}

} // extern "C"
