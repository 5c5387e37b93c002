/*
 * nnsweep's native kernel: the portable arithmetic (ARITHMETIC.md), fast.
 *
 * Every number it produces is defined by the spec as a sequence of IEEE-754 binary64 basic
 * operations, each correctly rounded: so any code that performs exactly that sequence gets
 * the same bits, whatever the CPU, the vector width or the compiler. This file performs it
 * three ways, chosen at run time (nn_path_available):
 *   PATH_SCALAR   plain C99, one seed at a time: builds with any C compiler on any CPU;
 *   PATH_AVX2     x86-64 AVX2, 4 seeds per vector (one seed per lane);
 *   PATH_AVX512   x86-64 AVX-512F, 8 seeds per vector.
 * The three share one body (_kernel_path.h); only the vector type and a dozen operations
 * differ. Seeds sit on the last, contiguous axis of every buffer, so every operation of the
 * spec is one vector instruction applied to NL independent seeds.
 *
 * What would break the bits, and what prevents it:
 *  - fused multiply-add: built with -ffp-contract=off, and the intrinsics used are separate
 *    multiplies and adds (no _mm*_fmadd_*);
 *  - -ffast-math (reassociation, reciprocal approximations): never used;
 *  - flush-to-zero / denormals-are-zero: MXCSR is set to the IEEE default for each call
 *    (a library built with -ffast-math may have switched them on in this process);
 *  - x87 extended precision: refused at compile time (FLT_EVAL_METHOD must be 0);
 *  - reordered sums: every sum runs in the spec's order; tiles only interleave independent
 *    sums.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0
#error "double arithmetic here is not plain binary64 (x87?): the portable kernel cannot be built"
#endif

#define NN_ABI 3 /* bump when struct nn_net or an entry point changes (native.py checks it) */
#define MAX_LAYERS 64
enum { PATH_SCALAR = 0, PATH_AVX2 = 1, PATH_AVX512 = 2, N_PATHS = 3 };
enum { ACT_SIGMOID = 0, ACT_TANH = 1, ACT_RELU = 2 };
enum { PRODUCT_STORE = 0, PRODUCT_ADD = 1, PRODUCT_SCALED = 2 };

/*
 * One block of NL seeds, everything the kernel reads and writes; mirrored field for field by
 * NNNet in nnsweep/train/native.py. All arrays C order with the lane (seed) axis last:
 *   weights, saved_weights: layer k is (units[k], units[k+1], NL), layers back to back
 *   biases, saved_biases: layer k is (units[k+1], NL), back to back (only when has_bias)
 *   curves: (n_points, NL); final_output: (n_samples, units[n_layers], NL)
 *   final_error, reached, first_below, status: (NL,)
 * status: 1 training, 0 an unused lane, -1 stopped (its margin went non-finite).
 */
struct nn_net {
    int64_t lanes;               /* NL of the path the caller laid the buffers out for */
    int64_t n_layers;            /* weight layers, 1 to MAX_LAYERS */
    const int64_t *units;        /* (n_layers + 1,) units per layer, inputs first */
    const int64_t *activations;  /* (n_layers,) ACT_* of each layer */
    int64_t has_bias;            /* 1: biases are trained */
    int64_t n_samples;           /* rows of inputs and targets */
    const double *inputs;        /* (n_samples, units[0]), the same for every lane */
    const double *targets;       /* (n_samples, units[n_layers]) */
    double lr;                   /* learning rate; 1.0 skips the multiply, as the spec says */
    double threshold;            /* first_below: the first margin below this */
    int64_t iterations;          /* training iterations */
    const int64_t *log_points;   /* (n_points,) ascending iterations whose margin is kept */
    int64_t n_points;
    const volatile int64_t *stop_flag; /* polled every iteration: non-zero stops early */
    volatile int64_t *progress;  /* written after every iteration: iterations done */
    double *weights;             /* in: the initial weights; out: the final ones */
    double *biases;
    double *curves;
    double *final_error;
    double *final_output;
    double *saved_weights;       /* a stopped lane's weights of the pass that stopped it */
    double *saved_biases;
    int64_t *reached;            /* iterations run: it + 1 for a lane stopped at it */
    int64_t *first_below;        /* -1 until the margin is below threshold */
    int64_t *status;
};

/* The spec's constants, as exact hex doubles. */
#define EXP_INV_LN2 0x1.71547652b82fep+0
#define EXP_SHIFT 0x1.8p52
#define EXP_LN2_HI 0x1.62e42fee00000p-1
#define EXP_LN2_LO 0x1.a39ef35793c76p-33
#define EXP_HI 710.0
#define EXP_LO (-746.0)
/* C[k] = the double nearest 1/k!, k = 0..13 (checked against fractions.Fraction in tests) */
static const double EXP_C[14] = {
    0x1p+0, 0x1p+0, 0x1p-1, 0x1.5555555555555p-3, 0x1.5555555555555p-5,
    0x1.1111111111111p-7, 0x1.6c16c16c16c17p-10, 0x1.a01a01a01a01ap-13,
    0x1.a01a01a01a01ap-16, 0x1.71de3a556c734p-19, 0x1.27e4fb7789f5cp-22,
    0x1.ae64567f544e4p-26, 0x1.1eed8eff8d898p-29, 0x1.6124613a86d09p-33,
};

/* Exponent bits of 2^m, m + 1023 given: the spec's scaling factors are always normal. */
#define EXP_BIAS_SHIFT 52
#define EXP_SHIFT_BITS_2046 (0x4338000000000000ull - 2046) /* bits(SHIFT) - 2046 */

/* ------------------------------------------------------------------------------------ */
/* Portable scalar path (C99)                                                           */
/* ------------------------------------------------------------------------------------ */

static inline double bits_to_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static inline uint64_t double_to_bits(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return bits;
}

/* 2^n1 and 2^n2 (n1 = floor(n / 2), n2 = n - n1) from t = 1.5 * 2^52 + n: t's low bits are
 * n (|n| < 1100), so bits(t) - bits(SHIFT) + 2046 is n + 2046 > 0, whose halving (an exact
 * floor of a non-negative integer) is n1 + 1023: the biased exponent of 2^n1. */
static inline void scalar_scales(double t, double *s1, double *s2)
{
    const int64_t n2046 = (int64_t)(double_to_bits(t) - EXP_SHIFT_BITS_2046); /* n + 2046 */
    const int64_t e1 = n2046 / 2;     /* n1 + 1023 = floor(n / 2) + 1023 */
    const int64_t e2 = n2046 - e1;    /* n2 + 1023 = n - n1 + 1023 */
    *s1 = bits_to_double((uint64_t)e1 << EXP_BIAS_SHIFT);
    *s2 = bits_to_double((uint64_t)e2 << EXP_BIAS_SHIFT);
}

#define V double
#define NL 1
#define TI 2
#define TJ 4
#define TARGET
#define FN(name) name##_scalar
#define V_ZERO 0.0
#define V_SET1(d) (d)
#define V_ADD(a, b) ((a) + (b))
#define V_SUB(a, b) ((a) - (b))
#define V_MUL(a, b) ((a) * (b))
#define V_DIV(a, b) ((a) / (b))
#define V_ABS(v) fabs(v)
#define V_NEG(v) (-(v))
#define V_COPYSIGN(q, z) copysign((q), (z))
#define V_RELU(z) ((z) <= 0.0 ? 0.0 : (z))
#define V_STEP(a) ((a) > 0.0 ? 1.0 : 0.0)
#define V_TO_LANES(out, v) ((out)[0] = (v))
#define EXPW 4
#define V_MIN(v, c) ((v) > (c) ? (c) : (v))
#define V_MAX(v, c) ((v) < (c) ? (c) : (v))
#define V_NAN_ZERO(x) ((x) != (x) ? 0.0 : (x))
#define V_NAN_KEEP(r, x) ((x) != (x) ? (x) : (r))
#define V_ANY_NAN(x) ((x) != (x))
#define V_SCALES(t, s1, s2) scalar_scales((t), &(s1), &(s2))
#include "_kernel_path.h"
#undef V
#undef NL
#undef TI
#undef TJ
#undef TARGET
#undef FN
#undef V_ZERO
#undef V_SET1
#undef V_ADD
#undef V_SUB
#undef V_MUL
#undef V_DIV
#undef V_ABS
#undef V_NEG
#undef V_COPYSIGN
#undef V_RELU
#undef V_STEP
#undef V_TO_LANES
#undef EXPW
#undef V_MIN
#undef V_MAX
#undef V_NAN_ZERO
#undef V_NAN_KEEP
#undef V_ANY_NAN
#undef V_SCALES

/* ------------------------------------------------------------------------------------ */
/* x86-64 paths: AVX2 and AVX-512F, compiled for their instruction sets function by      */
/* function (target attributes), used only where the CPU and the OS support them.        */
/* ------------------------------------------------------------------------------------ */

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#define NN_X86 1
#include <immintrin.h>

/* ---- AVX2: 4 seeds per vector ---- */
#define AVX2_TARGET __attribute__((target("avx2")))

AVX2_TARGET static inline __m256d avx2_nan_zero(__m256d x)
{
    return _mm256_andnot_pd(_mm256_cmp_pd(x, x, _CMP_UNORD_Q), x);
}

AVX2_TARGET static inline __m256d avx2_nan_keep(__m256d r, __m256d x)
{
    return _mm256_blendv_pd(r, x, _mm256_cmp_pd(x, x, _CMP_UNORD_Q));
}

AVX2_TARGET static inline void avx2_scales(__m256d t, __m256d *s1, __m256d *s2)
{
    const __m256i n2046 = _mm256_sub_epi64(_mm256_castpd_si256(t),
                                           _mm256_set1_epi64x((long long)EXP_SHIFT_BITS_2046));
    const __m256i e1 = _mm256_srli_epi64(n2046, 1);
    const __m256i e2 = _mm256_sub_epi64(n2046, e1);
    *s1 = _mm256_castsi256_pd(_mm256_slli_epi64(e1, EXP_BIAS_SHIFT));
    *s2 = _mm256_castsi256_pd(_mm256_slli_epi64(e2, EXP_BIAS_SHIFT));
}

#define V __m256d
#define NL 4
#define TI 2
#define TJ 4
#define TARGET AVX2_TARGET
#define FN(name) name##_avx2
#define V_ZERO _mm256_setzero_pd()
#define V_SET1(d) _mm256_set1_pd(d)
#define V_ADD _mm256_add_pd
#define V_SUB _mm256_sub_pd
#define V_MUL _mm256_mul_pd
#define V_DIV _mm256_div_pd
#define V_ABS(v) _mm256_andnot_pd(_mm256_set1_pd(-0.0), (v))
#define V_NEG(v) _mm256_xor_pd(_mm256_set1_pd(-0.0), (v))
#define V_COPYSIGN(q, z)                                                                      \
    _mm256_or_pd(_mm256_andnot_pd(_mm256_set1_pd(-0.0), (q)),                               \
                 _mm256_and_pd(_mm256_set1_pd(-0.0), (z)))
#define V_RELU(z)                                                                             \
    _mm256_blendv_pd((z), _mm256_setzero_pd(), _mm256_cmp_pd((z), _mm256_setzero_pd(), _CMP_LE_OQ))
#define V_STEP(a)                                                                             \
    _mm256_and_pd(_mm256_cmp_pd((a), _mm256_setzero_pd(), _CMP_GT_OQ), _mm256_set1_pd(1.0))
#define V_TO_LANES(out, v) _mm256_storeu_pd((out), (v))
#define EXPW 4
#define V_MIN _mm256_min_pd
#define V_MAX _mm256_max_pd
#define V_NAN_ZERO avx2_nan_zero
#define V_NAN_KEEP avx2_nan_keep
#define V_ANY_NAN(x) (_mm256_movemask_pd(_mm256_cmp_pd((x), (x), _CMP_UNORD_Q)) != 0)
#define V_SCALES(t, s1, s2) avx2_scales((t), &(s1), &(s2))
#include "_kernel_path.h"
#undef V
#undef NL
#undef TI
#undef TJ
#undef TARGET
#undef FN
#undef V_ZERO
#undef V_SET1
#undef V_ADD
#undef V_SUB
#undef V_MUL
#undef V_DIV
#undef V_ABS
#undef V_NEG
#undef V_COPYSIGN
#undef V_RELU
#undef V_STEP
#undef V_TO_LANES
#undef EXPW
#undef V_MIN
#undef V_MAX
#undef V_NAN_ZERO
#undef V_NAN_KEEP
#undef V_ANY_NAN
#undef V_SCALES

/* ---- AVX-512F: 8 seeds per vector (AVX-512F instructions only) ---- */
#define AVX512_TARGET __attribute__((target("avx512f")))
#define SIGN512 _mm512_set1_epi64((long long)0x8000000000000000ull)

AVX512_TARGET static inline __m512d avx512_nan_zero(__m512d x)
{
    return _mm512_mask_mov_pd(x, _mm512_cmp_pd_mask(x, x, _CMP_UNORD_Q), _mm512_setzero_pd());
}

AVX512_TARGET static inline __m512d avx512_nan_keep(__m512d r, __m512d x)
{
    return _mm512_mask_mov_pd(r, _mm512_cmp_pd_mask(x, x, _CMP_UNORD_Q), x);
}

AVX512_TARGET static inline void avx512_scales(__m512d t, __m512d *s1, __m512d *s2)
{
    const __m512i n2046 = _mm512_sub_epi64(_mm512_castpd_si512(t),
                                           _mm512_set1_epi64((long long)EXP_SHIFT_BITS_2046));
    const __m512i e1 = _mm512_srli_epi64(n2046, 1);
    const __m512i e2 = _mm512_sub_epi64(n2046, e1);
    *s1 = _mm512_castsi512_pd(_mm512_slli_epi64(e1, EXP_BIAS_SHIFT));
    *s2 = _mm512_castsi512_pd(_mm512_slli_epi64(e2, EXP_BIAS_SHIFT));
}

#define V __m512d
#define NL 8
#define TI 4
#define TJ 4
#define TARGET AVX512_TARGET
#define FN(name) name##_avx512
#define V_ZERO _mm512_setzero_pd()
#define V_SET1(d) _mm512_set1_pd(d)
#define V_ADD _mm512_add_pd
#define V_SUB _mm512_sub_pd
#define V_MUL _mm512_mul_pd
#define V_DIV _mm512_div_pd
#define V_ABS(v) _mm512_castsi512_pd(_mm512_andnot_si512(SIGN512, _mm512_castpd_si512(v)))
#define V_NEG(v) _mm512_castsi512_pd(_mm512_xor_si512(SIGN512, _mm512_castpd_si512(v)))
#define V_COPYSIGN(q, z)                                                                      \
    _mm512_castsi512_pd(_mm512_or_si512(_mm512_andnot_si512(SIGN512, _mm512_castpd_si512(q)), \
                                        _mm512_and_si512(SIGN512, _mm512_castpd_si512(z))))
#define V_RELU(z)                                                                             \
    _mm512_mask_mov_pd((z), _mm512_cmp_pd_mask((z), _mm512_setzero_pd(), _CMP_LE_OQ),       \
                       _mm512_setzero_pd())
#define V_STEP(a)                                                                             \
    _mm512_maskz_mov_pd(_mm512_cmp_pd_mask((a), _mm512_setzero_pd(), _CMP_GT_OQ),           \
                        _mm512_set1_pd(1.0))
#define V_TO_LANES(out, v) _mm512_storeu_pd((out), (v))
#define EXPW 8
#define V_MIN _mm512_min_pd
#define V_MAX _mm512_max_pd
#define V_NAN_ZERO avx512_nan_zero
#define V_NAN_KEEP avx512_nan_keep
#define V_ANY_NAN(x) (_mm512_cmp_pd_mask((x), (x), _CMP_UNORD_Q) != 0)
#define V_SCALES(t, s1, s2) avx512_scales((t), &(s1), &(s2))
#include "_kernel_path.h"

/* The IEEE default for the duration of a call: round to nearest, no FTZ, no DAZ. */
#define FP_ENTER                                                                              \
    const unsigned int saved_csr = _mm_getcsr();                                              \
    _mm_setcsr(0x1f80)
#define FP_LEAVE _mm_setcsr(saved_csr)

#else
#define NN_X86 0
#define FP_ENTER                                                                              \
    do {                                                                                      \
    } while (0)
#define FP_LEAVE                                                                              \
    do {                                                                                      \
    } while (0)
#endif

/* ------------------------------------------------------------------------------------ */
/* Entry points (ctypes)                                                                */
/* ------------------------------------------------------------------------------------ */

int64_t nn_abi(void) { return NN_ABI; }

/* Seeds per vector of a path; 0 when this build does not have it. */
int64_t nn_path_lanes(int64_t path)
{
    if (path == PATH_SCALAR)
        return 1;
#if NN_X86
    if (path == PATH_AVX2)
        return 4;
    if (path == PATH_AVX512)
        return 8;
#endif
    return 0;
}

/* Whether this build has the path and this CPU (and OS) can run it. */
int64_t nn_path_available(int64_t path)
{
    if (path == PATH_SCALAR)
        return 1;
#if NN_X86
    __builtin_cpu_init();
    if (path == PATH_AVX2)
        return __builtin_cpu_supports("avx2") != 0;
    if (path == PATH_AVX512)
        return __builtin_cpu_supports("avx512f") != 0;
#endif
    return 0;
}

static int valid(int64_t path, const struct nn_net *net)
{
    return nn_path_available(path) && net->lanes == nn_path_lanes(path) && net->n_layers >= 1
           && net->n_layers <= MAX_LAYERS && net->n_samples >= 1;
}

/* Train one block; returns the iterations done, or -1 (bad call, or out of memory). */
int64_t nn_train(int64_t path, const struct nn_net *net)
{
    if (!valid(path, net))
        return -1;
    int64_t done;
    FP_ENTER;
#if NN_X86
    if (path == PATH_AVX512)
        done = train_avx512(net);
    else if (path == PATH_AVX2)
        done = train_avx2(net);
    else
#endif
        done = train_scalar(net);
    FP_LEAVE;
    return done;
}

/* One forward pass of net->weights (and biases) on net->inputs: fills final_output and
 * final_error (the margins). Returns 0, or -1. */
int64_t nn_evaluate(int64_t path, const struct nn_net *net)
{
    if (!valid(path, net))
        return -1;
    int64_t done;
    FP_ENTER;
#if NN_X86
    if (path == PATH_AVX512)
        done = evaluate_avx512(net);
    else if (path == PATH_AVX2)
        done = evaluate_avx2(net);
    else
#endif
        done = evaluate_scalar(net);
    FP_LEAVE;
    return done;
}

/* y = exp(x) for n values through a path's exp (for tests). Returns 0, or -1. */
int64_t nn_exp(int64_t path, const double *x, double *y, int64_t n)
{
    if (!nn_path_available(path))
        return -1;
    FP_ENTER;
#if NN_X86
    if (path == PATH_AVX512)
        exp_array_avx512(x, y, n);
    else if (path == PATH_AVX2)
        exp_array_avx2(x, y, n);
    else
#endif
        exp_array_scalar(x, y, n);
    FP_LEAVE;
    return 0;
}
