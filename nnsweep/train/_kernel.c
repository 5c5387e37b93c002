/*
 * nnsweep's native training kernel: the tutorial's sigmoid network, bit for bit, faster.
 *
 * Why it exists: with the tutorial's float64 arithmetic, numpy spends most of a small
 * network's time in scalar libm exp calls and per-call BLAS overhead. This file does the
 * same operations, in the same order and with the same roundings, for 4 seeds at once: one
 * seed per AVX2 lane. It is only used after a probe has shown, on this machine, that it
 * reproduces numpy's numbers exactly (nnsweep/train/native.py); anywhere else numpy runs.
 *
 * What "the same" means, operation by operation:
 *  - products: OpenBLAS's dgemm kernels accumulate each entry with one fused multiply-add
 *    per k, in order k = 0, 1, ..., starting from +0.0. We do exactly that.
 *  - exp: glibc (2.28 and later) computes exp with the algorithm of ARM's optimized-routines
 *    (128-entry table, degree-5 polynomial); on an FMA machine it runs the build that fuses
 *    the multiply-adds shown in exp4() below. We run that arithmetic on 4 lanes; inputs off
 *    the main path (|x| >= 512, inf, NaN) go to the C library's own exp.
 *  - everything else is one IEEE operation at a time, as numpy does it.
 *  - error margins: numpy's pairwise summation, started from 0.0 as np.add.reduce does.
 *
 * Built with -ffp-contract=off so that the compiler fuses nothing we did not ask for.
 * Buffers are read through __m256d_u (unaligned) pointers: numpy only promises 16 bytes.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define LANES 4

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define VECTOR __attribute__((target("avx2,fma")))

int64_t nn_lanes(void) { return LANES; }

int64_t nn_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* glibc's __exp_data (from ARM optimized-routines, MIT licence): N = 128. */
static const uint64_t EXP_TABLE[256] = {
    0x0000000000000000ull, 0x3ff0000000000000ull, 0x3c9b3b4f1a88bf6eull, 0x3feff63da9fb3335ull,
    0xbc7160139cd8dc5dull, 0x3fefec9a3e778061ull, 0xbc905e7a108766d1ull, 0x3fefe315e86e7f85ull,
    0x3c8cd2523567f613ull, 0x3fefd9b0d3158574ull, 0xbc8bce8023f98efaull, 0x3fefd06b29ddf6deull,
    0x3c60f74e61e6c861ull, 0x3fefc74518759bc8ull, 0x3c90a3e45b33d399ull, 0x3fefbe3ecac6f383ull,
    0x3c979aa65d837b6dull, 0x3fefb5586cf9890full, 0x3c8eb51a92fdeffcull, 0x3fefac922b7247f7ull,
    0x3c3ebe3d702f9cd1ull, 0x3fefa3ec32d3d1a2ull, 0xbc6a033489906e0bull, 0x3fef9b66affed31bull,
    0xbc9556522a2fbd0eull, 0x3fef9301d0125b51ull, 0xbc5080ef8c4eea55ull, 0x3fef8abdc06c31ccull,
    0xbc91c923b9d5f416ull, 0x3fef829aaea92de0ull, 0x3c80d3e3e95c55afull, 0x3fef7a98c8a58e51ull,
    0xbc801b15eaa59348ull, 0x3fef72b83c7d517bull, 0xbc8f1ff055de323dull, 0x3fef6af9388c8deaull,
    0x3c8b898c3f1353bfull, 0x3fef635beb6fcb75ull, 0xbc96d99c7611eb26ull, 0x3fef5be084045cd4ull,
    0x3c9aecf73e3a2f60ull, 0x3fef54873168b9aaull, 0xbc8fe782cb86389dull, 0x3fef4d5022fcd91dull,
    0x3c8a6f4144a6c38dull, 0x3fef463b88628cd6ull, 0x3c807a05b0e4047dull, 0x3fef3f49917ddc96ull,
    0x3c968efde3a8a894ull, 0x3fef387a6e756238ull, 0x3c875e18f274487dull, 0x3fef31ce4fb2a63full,
    0x3c80472b981fe7f2ull, 0x3fef2b4565e27cddull, 0xbc96b87b3f71085eull, 0x3fef24dfe1f56381ull,
    0x3c82f7e16d09ab31ull, 0x3fef1e9df51fdee1ull, 0xbc3d219b1a6fbffaull, 0x3fef187fd0dad990ull,
    0x3c8b3782720c0ab4ull, 0x3fef1285a6e4030bull, 0x3c6e149289cecb8full, 0x3fef0cafa93e2f56ull,
    0x3c834d754db0abb6ull, 0x3fef06fe0a31b715ull, 0x3c864201e2ac744cull, 0x3fef0170fc4cd831ull,
    0x3c8fdd395dd3f84aull, 0x3feefc08b26416ffull, 0xbc86a3803b8e5b04ull, 0x3feef6c55f929ff1ull,
    0xbc924aedcc4b5068ull, 0x3feef1a7373aa9cbull, 0xbc9907f81b512d8eull, 0x3feeecae6d05d866ull,
    0xbc71d1e83e9436d2ull, 0x3feee7db34e59ff7ull, 0xbc991919b3ce1b15ull, 0x3feee32dc313a8e5ull,
    0x3c859f48a72a4c6dull, 0x3feedea64c123422ull, 0xbc9312607a28698aull, 0x3feeda4504ac801cull,
    0xbc58a78f4817895bull, 0x3feed60a21f72e2aull, 0xbc7c2c9b67499a1bull, 0x3feed1f5d950a897ull,
    0x3c4363ed60c2ac11ull, 0x3feece086061892dull, 0x3c9666093b0664efull, 0x3feeca41ed1d0057ull,
    0x3c6ecce1daa10379ull, 0x3feec6a2b5c13cd0ull, 0x3c93ff8e3f0f1230ull, 0x3feec32af0d7d3deull,
    0x3c7690cebb7aafb0ull, 0x3feebfdad5362a27ull, 0x3c931dbdeb54e077ull, 0x3feebcb299fddd0dull,
    0xbc8f94340071a38eull, 0x3feeb9b2769d2ca7ull, 0xbc87deccdc93a349ull, 0x3feeb6daa2cf6642ull,
    0xbc78dec6bd0f385full, 0x3feeb42b569d4f82ull, 0xbc861246ec7b5cf6ull, 0x3feeb1a4ca5d920full,
    0x3c93350518fdd78eull, 0x3feeaf4736b527daull, 0x3c7b98b72f8a9b05ull, 0x3feead12d497c7fdull,
    0x3c9063e1e21c5409ull, 0x3feeab07dd485429ull, 0x3c34c7855019c6eaull, 0x3feea9268a5946b7ull,
    0x3c9432e62b64c035ull, 0x3feea76f15ad2148ull, 0xbc8ce44a6199769full, 0x3feea5e1b976dc09ull,
    0xbc8c33c53bef4da8ull, 0x3feea47eb03a5585ull, 0xbc845378892be9aeull, 0x3feea34634ccc320ull,
    0xbc93cedd78565858ull, 0x3feea23882552225ull, 0x3c5710aa807e1964ull, 0x3feea155d44ca973ull,
    0xbc93b3efbf5e2228ull, 0x3feea09e667f3bcdull, 0xbc6a12ad8734b982ull, 0x3feea012750bdabfull,
    0xbc6367efb86da9eeull, 0x3fee9fb23c651a2full, 0xbc80dc3d54e08851ull, 0x3fee9f7df9519484ull,
    0xbc781f647e5a3ecfull, 0x3fee9f75e8ec5f74ull, 0xbc86ee4ac08b7db0ull, 0x3fee9f9a48a58174ull,
    0xbc8619321e55e68aull, 0x3fee9feb564267c9ull, 0x3c909ccb5e09d4d3ull, 0x3feea0694fde5d3full,
    0xbc7b32dcb94da51dull, 0x3feea11473eb0187ull, 0x3c94ecfd5467c06bull, 0x3feea1ed0130c132ull,
    0x3c65ebe1abd66c55ull, 0x3feea2f336cf4e62ull, 0xbc88a1c52fb3cf42ull, 0x3feea427543e1a12ull,
    0xbc9369b6f13b3734ull, 0x3feea589994cce13ull, 0xbc805e843a19ff1eull, 0x3feea71a4623c7adull,
    0xbc94d450d872576eull, 0x3feea8d99b4492edull, 0x3c90ad675b0e8a00ull, 0x3feeaac7d98a6699ull,
    0x3c8db72fc1f0eab4ull, 0x3feeace5422aa0dbull, 0xbc65b6609cc5e7ffull, 0x3feeaf3216b5448cull,
    0x3c7bf68359f35f44ull, 0x3feeb1ae99157736ull, 0xbc93091fa71e3d83ull, 0x3feeb45b0b91ffc6ull,
    0xbc5da9b88b6c1e29ull, 0x3feeb737b0cdc5e5ull, 0xbc6c23f97c90b959ull, 0x3feeba44cbc8520full,
    0xbc92434322f4f9aaull, 0x3feebd829fde4e50ull, 0xbc85ca6cd7668e4bull, 0x3feec0f170ca07baull,
    0x3c71affc2b91ce27ull, 0x3feec49182a3f090ull, 0x3c6dd235e10a73bbull, 0x3feec86319e32323ull,
    0xbc87c50422622263ull, 0x3feecc667b5de565ull, 0x3c8b1c86e3e231d5ull, 0x3feed09bec4a2d33ull,
    0xbc91bbd1d3bcbb15ull, 0x3feed503b23e255dull, 0x3c90cc319cee31d2ull, 0x3feed99e1330b358ull,
    0x3c8469846e735ab3ull, 0x3feede6b5579fdbfull, 0xbc82dfcd978e9db4ull, 0x3feee36bbfd3f37aull,
    0x3c8c1a7792cb3387ull, 0x3feee89f995ad3adull, 0xbc907b8f4ad1d9faull, 0x3feeee07298db666ull,
    0xbc55c3d956dcaebaull, 0x3feef3a2b84f15fbull, 0xbc90a40e3da6f640ull, 0x3feef9728de5593aull,
    0xbc68d6f438ad9334ull, 0x3feeff76f2fb5e47ull, 0xbc91eee26b588a35ull, 0x3fef05b030a1064aull,
    0x3c74ffd70a5fddcdull, 0x3fef0c1e904bc1d2ull, 0xbc91bdfbfa9298acull, 0x3fef12c25bd71e09ull,
    0x3c736eae30af0cb3ull, 0x3fef199bdd85529cull, 0x3c8ee3325c9ffd94ull, 0x3fef20ab5fffd07aull,
    0x3c84e08fd10959acull, 0x3fef27f12e57d14bull, 0x3c63cdaf384e1a67ull, 0x3fef2f6d9406e7b5ull,
    0x3c676b2c6c921968ull, 0x3fef3720dcef9069ull, 0xbc808a1883ccb5d2ull, 0x3fef3f0b555dc3faull,
    0xbc8fad5d3ffffa6full, 0x3fef472d4a07897cull, 0xbc900dae3875a949ull, 0x3fef4f87080d89f2ull,
    0x3c74a385a63d07a7ull, 0x3fef5818dcfba487ull, 0xbc82919e2040220full, 0x3fef60e316c98398ull,
    0x3c8e5a50d5c192acull, 0x3fef69e603db3285ull, 0x3c843a59ac016b4bull, 0x3fef7321f301b460ull,
    0xbc82d52107b43e1full, 0x3fef7c97337b9b5full, 0xbc892ab93b470dc9ull, 0x3fef864614f5a129ull,
    0x3c74b604603a88d3ull, 0x3fef902ee78b3ff6ull, 0x3c83c5ec519d7271ull, 0x3fef9a51fbc74c83ull,
    0xbc8ff7128fd391f0ull, 0x3fefa4afa2a490daull, 0xbc8dae98e223747dull, 0x3fefaf482d8e67f1ull,
    0x3c8ec3bc41aa2008ull, 0x3fefba1bee615a27ull, 0x3c842b94c3a9eb32ull, 0x3fefc52b376bba97ull,
    0x3c8a64a931d185eeull, 0x3fefd0765b6e4540ull, 0xbc8e37bae43be3edull, 0x3fefdbfdad9cbe14ull,
    0x3c77893b4d91cd9dull, 0x3fefe7c1819e90d8ull, 0x3c5305c14160cc89ull, 0x3feff3c22b8f71f1ull,
};
#define EXP_INVLN2N 0x1.71547652b82fep+7
#define EXP_NEGLN2HIN -0x1.62e42fefa0000p-8
#define EXP_NEGLN2LON -0x1.cf79abc9e3b3ap-47
#define EXP_SHIFT 0x1.8p+52
#define EXP_C2 0x1.ffffffffffdbdp-2
#define EXP_C3 0x1.555555555543cp-3
#define EXP_C4 0x1.55555cf172b91p-5
#define EXP_C5 0x1.1111167a4d017p-7

/* exp(x) on 4 lanes, rounded exactly as glibc's __exp_fma rounds it. */
VECTOR static inline __m256d exp4(__m256d x)
{
    const __m256i bits = _mm256_castpd_si256(x);
    const __m256i abstop = _mm256_and_si256(_mm256_srli_epi64(bits, 52), _mm256_set1_epi64x(0x7ff));
    /* glibc's main path is 2^-54 <= |x| < 512; below it, exp(x) is 1 + x. */
    const __m256i huge = _mm256_cmpgt_epi64(abstop, _mm256_set1_epi64x(0x407));
    if (!_mm256_testz_si256(huge, huge)) {
        double lanes[LANES];
        _mm256_storeu_pd(lanes, x);
        for (int l = 0; l < LANES; l++)
            lanes[l] = exp(lanes[l]);
        return _mm256_loadu_pd(lanes);
    }
    const __m256i tiny = _mm256_cmpgt_epi64(_mm256_set1_epi64x(0x3c9), abstop);
    __m256d kd = _mm256_fmadd_pd(x, _mm256_set1_pd(EXP_INVLN2N), _mm256_set1_pd(EXP_SHIFT));
    const __m256i ki = _mm256_castpd_si256(kd);
    kd = _mm256_sub_pd(kd, _mm256_set1_pd(EXP_SHIFT));
    __m256d r = _mm256_fmadd_pd(kd, _mm256_set1_pd(EXP_NEGLN2HIN), x);
    r = _mm256_fmadd_pd(kd, _mm256_set1_pd(EXP_NEGLN2LON), r);
    const __m256i top = _mm256_slli_epi64(ki, 45);
    /* Each lane's (tail, scale bits) pair is one 16-byte load: cheaper than two gathers. */
    int64_t idx[LANES];
    _mm256_storeu_si256((__m256i *)idx, _mm256_slli_epi64(_mm256_and_si256(ki, _mm256_set1_epi64x(0x7f)), 1));
    const __m256d pairs02 = _mm256_set_m128d(_mm_loadu_pd((const double *)EXP_TABLE + idx[2]),
                                             _mm_loadu_pd((const double *)EXP_TABLE + idx[0]));
    const __m256d pairs13 = _mm256_set_m128d(_mm_loadu_pd((const double *)EXP_TABLE + idx[3]),
                                             _mm_loadu_pd((const double *)EXP_TABLE + idx[1]));
    const __m256d tail = _mm256_unpacklo_pd(pairs02, pairs13);
    const __m256i sbits = _mm256_add_epi64(_mm256_castpd_si256(_mm256_unpackhi_pd(pairs02, pairs13)), top);
    const __m256d p23 = _mm256_fmadd_pd(r, _mm256_set1_pd(EXP_C3), _mm256_set1_pd(EXP_C2));
    const __m256d tail_r = _mm256_add_pd(r, tail);
    const __m256d r2 = _mm256_mul_pd(r, r);
    const __m256d p45 = _mm256_fmadd_pd(r, _mm256_set1_pd(EXP_C5), _mm256_set1_pd(EXP_C4));
    const __m256d low = _mm256_fmadd_pd(p23, r2, tail_r);
    const __m256d r4 = _mm256_mul_pd(r2, r2);
    const __m256d tmp = _mm256_fmadd_pd(r4, p45, low);
    const __m256d scale = _mm256_castsi256_pd(sbits);
    const __m256d main = _mm256_fmadd_pd(scale, tmp, scale);
    const __m256d near_zero = _mm256_add_pd(_mm256_set1_pd(1.0), x);
    return _mm256_blendv_pd(main, near_zero, _mm256_castsi256_pd(tiny));
}

/* For tests: exp of n values (n a multiple of 4) through exp4. */
VECTOR void nn_exp(const double *x, double *y, int64_t n)
{
    for (int64_t i = 0; i + LANES <= n; i += LANES)
        _mm256_storeu_pd(y + i, exp4(_mm256_loadu_pd(x + i)));
}

/* 1 / (1 + exp(-z)), one rounding per operation, as the tutorial's sigmoid. */
VECTOR static inline __m256d sigmoid4(__m256d z)
{
    const __m256d one = _mm256_set1_pd(1.0);
    const __m256d negated = _mm256_xor_pd(z, _mm256_set1_pd(-0.0));
    return _mm256_div_pd(one, _mm256_add_pd(one, exp4(negated)));
}

/* What a product does with each finished entry (its fused sum `acc`). */
enum { STORE, SIGMOID, PULLBACK, UPDATE, UPDATE_SCALED };

VECTOR static inline void finish(__m256d acc, __m256d_u *dst, const __m256d_u *activity,
                                 int kind, __m256d rate)
{
    const __m256d one = _mm256_set1_pd(1.0);
    switch (kind) {
    case SIGMOID: /* a layer's output */
        *dst = sigmoid4(acc);
        break;
    case PULLBACK: /* delta = (delta_next . W^T) * (a * (1 - a)) */
        *dst = _mm256_mul_pd(acc, _mm256_mul_pd(*activity, _mm256_sub_pd(one, *activity)));
        break;
    case UPDATE: /* W += L^T . delta */
        *dst = _mm256_add_pd(*dst, acc);
        break;
    case UPDATE_SCALED: /* W += (L^T . delta) * lr, the product rounded first */
        *dst = _mm256_add_pd(*dst, _mm256_mul_pd(acc, rate));
        break;
    default:
        *dst = acc;
    }
}

/*
 * out[i][j] <- finish(sum_k left(i, k) * right(k, j)) for i < rows, j < cols, each sum one
 * fused multiply-add per k from +0.0 in order k = 0, 1, ..., as OpenBLAS's dgemm kernels
 * do. left(i, k) = left[i * li + k * lk], right(k, j) = right[k * rk + j * rj].
 * Tiles of 2 rows x 4 columns keep 8 independent sums in registers, so the fused
 * multiply-adds' latency overlaps; the order within each sum is unchanged.
 * LEFT is a vector per (i, k), or for the data (the same for every lane) a broadcast double.
 */
#define DEFINE_PRODUCT(NAME, LEFT_TYPE, LOAD)                                                   \
    VECTOR static void NAME(const LEFT_TYPE *left, int64_t li, int64_t lk,                     \
                            const __m256d_u *right, int64_t rk, int64_t rj, __m256d_u *out,    \
                            int64_t rows, int64_t depth, int64_t cols, int kind,                \
                            const __m256d_u *activity, __m256d rate)                           \
    {                                                                                           \
        for (int64_t i = 0; i < rows; i += 2) {                                                 \
            /* an odd last row pairs with itself; the copy's sums are dropped */                 \
            const int64_t i2 = i + 1 < rows ? i + 1 : i;                                        \
            int64_t j = 0;                                                                      \
            for (; j + 4 <= cols; j += 4) {                                                     \
                __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;                    \
                __m256d b0 = a0, b1 = a0, b2 = a0, b3 = a0;                                     \
                for (int64_t k = 0; k < depth; k++) {                                           \
                    const __m256d x = LOAD(left[i * li + k * lk]);                              \
                    const __m256d y = LOAD(left[i2 * li + k * lk]);                             \
                    const __m256d_u *r = right + k * rk + j * rj;                               \
                    const __m256d r0 = r[0], r1 = r[rj], r2 = r[2 * rj], r3 = r[3 * rj];        \
                    a0 = _mm256_fmadd_pd(x, r0, a0);                                            \
                    a1 = _mm256_fmadd_pd(x, r1, a1);                                            \
                    a2 = _mm256_fmadd_pd(x, r2, a2);                                            \
                    a3 = _mm256_fmadd_pd(x, r3, a3);                                            \
                    b0 = _mm256_fmadd_pd(y, r0, b0);                                            \
                    b1 = _mm256_fmadd_pd(y, r1, b1);                                            \
                    b2 = _mm256_fmadd_pd(y, r2, b2);                                            \
                    b3 = _mm256_fmadd_pd(y, r3, b3);                                            \
                }                                                                               \
                const int64_t e = i * cols + j, f = i2 * cols + j;                              \
                finish(a0, out + e, activity + e, kind, rate);                                  \
                finish(a1, out + e + 1, activity + e + 1, kind, rate);                          \
                finish(a2, out + e + 2, activity + e + 2, kind, rate);                          \
                finish(a3, out + e + 3, activity + e + 3, kind, rate);                          \
                if (i2 != i) {                                                                  \
                    finish(b0, out + f, activity + f, kind, rate);                              \
                    finish(b1, out + f + 1, activity + f + 1, kind, rate);                      \
                    finish(b2, out + f + 2, activity + f + 2, kind, rate);                      \
                    finish(b3, out + f + 3, activity + f + 3, kind, rate);                      \
                }                                                                               \
            }                                                                                   \
            for (; j < cols; j++) {                                                             \
                __m256d a = _mm256_setzero_pd(), b = a;                                         \
                for (int64_t k = 0; k < depth; k++) {                                           \
                    const __m256d r = right[k * rk + j * rj];                                   \
                    a = _mm256_fmadd_pd(LOAD(left[i * li + k * lk]), r, a);                     \
                    b = _mm256_fmadd_pd(LOAD(left[i2 * li + k * lk]), r, b);                    \
                }                                                                               \
                const int64_t e = i * cols + j, f = i2 * cols + j;                              \
                finish(a, out + e, activity + e, kind, rate);                                   \
                if (i2 != i)                                                                    \
                    finish(b, out + f, activity + f, kind, rate);                               \
            }                                                                                   \
        }                                                                                       \
    }

#define LOAD_VECTOR(v) (v)
#define LOAD_DATA(d) _mm256_set1_pd(d)
DEFINE_PRODUCT(product, __m256d_u, LOAD_VECTOR)
DEFINE_PRODUCT(product_data, double, LOAD_DATA)

/* numpy's pairwise sum of n values (lane-wise), as np.add.reduce gives it, plus the 0.0
 * that the reduction starts from. */
VECTOR static __m256d pairwise_sum(const __m256d_u *values, int64_t n)
{
    if (n < 8) {
        __m256d sum = _mm256_setzero_pd();
        for (int64_t i = 0; i < n; i++)
            sum = _mm256_add_pd(sum, values[i]);
        return sum;
    }
    if (n <= 128) {
        __m256d r[8];
        for (int j = 0; j < 8; j++)
            r[j] = values[j];
        int64_t i = 8;
        for (; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++)
                r[j] = _mm256_add_pd(r[j], values[i + j]);
        __m256d sum = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(r[0], r[1]), _mm256_add_pd(r[2], r[3])),
                                    _mm256_add_pd(_mm256_add_pd(r[4], r[5]), _mm256_add_pd(r[6], r[7])));
        for (; i < n; i++)
            sum = _mm256_add_pd(sum, values[i]);
        return sum;
    }
    int64_t half = n / 2;
    half -= half % 8;
    return _mm256_add_pd(pairwise_sum(values, half), pairwise_sum(values + half, n - half));
}

/*
 * Train one block of 4 seeds (lanes) from iteration `start` up to, not including, `stop`.
 *
 * Everything the kernel reads and writes is named in one struct, mirrored field for field
 * by nnsweep/train/native.py's ctypes.Structure (NNBlock). Layouts (all C order, lanes innermost):
 *   weights, saved_weights: layer k is (units[k], units[k+1], 4), layers back to back
 *   scratch: 4 * n_samples * (2 * (units[1] + ... + units[n_layers]) + 2 * units[n_layers])
 *            doubles: each layer's outputs and deltas, then the error and its magnitude
 *   curves: (n_points, 4); final_output: (n_samples, units[n_layers], 4)
 *   final_error, reached, first_below, status: (4,)
 * status: 1 training, 0 an unused lane, -1 diverged (stopped). A diverged lane's weights
 * are saved, then zeroed so that it computes harmless numbers from then on.
 */
struct nn_block {
    int64_t lanes;             /* the caller's lane count: must be LANES */
    int64_t n_layers;          /* weight layers (hidden layers + 1), at most 64 */
    const int64_t *units;      /* (n_layers + 1,) units per layer, inputs first */
    int64_t n_samples;         /* rows of inputs and targets */
    const double *inputs;      /* (n_samples, units[0]), the same for every lane */
    const double *targets;     /* (n_samples, units[n_layers]) */
    double lr;                 /* learning rate (1.0 skips the multiply, as numpy's path does) */
    double threshold;          /* first_below: first margin below this */
    int64_t last;              /* the final iteration (iterations - 1) */
    const int64_t *log_points; /* (n_points,) iterations whose margin goes into curves */
    int64_t n_points;
    const volatile int64_t *stop_flag; /* polled every iteration: non-zero returns early */
    double *weights;
    double *scratch;
    double *curves;
    double *final_error;
    double *final_output;
    double *saved_weights;
    int64_t *reached;
    int64_t *first_below;
    int64_t *status;
};

/*
 * Returns the iteration it stopped before: `stop` when the chunk is done, less when the
 * stop flag was raised (the block is then abandoned), or -1 when the caller's lane count
 * is not this library's.
 */
VECTOR int64_t nn_train_block(const struct nn_block *block, int64_t start, int64_t stop)
{
    if (block->lanes != LANES)
        return -1;
    const int64_t n_layers = block->n_layers, n_samples = block->n_samples;
    const int64_t *units = block->units, *log_points = block->log_points;
    const int64_t n_points = block->n_points, last = block->last;
    const double *inputs = block->inputs, *targets = block->targets;
    const double lr = block->lr, threshold = block->threshold;
    double *weights_data = block->weights, *scratch_data = block->scratch;
    double *curves = block->curves, *final_error = block->final_error;
    double *final_output = block->final_output, *saved_weights = block->saved_weights;
    int64_t *reached = block->reached, *first_below = block->first_below;
    int64_t *status = block->status;
    __m256d_u *weights[64], *outputs[64], *deltas[64];
    int64_t n_weights = 0;
    __m256d_u *cursor = (__m256d_u *)scratch_data;
    for (int64_t k = 0; k < n_layers; k++) {
        weights[k] = (__m256d_u *)weights_data + n_weights;
        n_weights += units[k] * units[k + 1];
        outputs[k] = cursor;
        cursor += n_samples * units[k + 1];
        deltas[k] = cursor;
        cursor += n_samples * units[k + 1];
    }
    const int64_t n_out = units[n_layers];
    const int64_t n_errors = n_samples * n_out;
    __m256d_u *error = cursor;
    cursor += n_errors;
    __m256d_u *magnitude = cursor;
    const __m256d one = _mm256_set1_pd(1.0);
    const __m256d sign = _mm256_set1_pd(-0.0);
    const __m256d rate = _mm256_set1_pd(lr);
    const int scaled = lr != 1.0;
    int64_t slot = 0;
    while (slot < n_points && log_points[slot] < start)
        slot++;

    for (int64_t it = start; it < stop; it++) {
        if (*block->stop_flag)
            return it;
        /* forward */
        for (int64_t k = 0; k < n_layers; k++) {
            const int64_t a = units[k], b = units[k + 1];
            if (k == 0)
                product_data(inputs, a, 1, weights[0], b, 1, outputs[0], n_samples, a, b,
                             SIGMOID, outputs[0], rate);
            else
                product(outputs[k - 1], a, 1, weights[k], b, 1, outputs[k], n_samples, a, b,
                        SIGMOID, outputs[k], rate);
        }
        /* error = targets - output; delta = error * (output * (1 - output)) */
        __m256d_u *output = outputs[n_layers - 1];
        for (int64_t e = 0; e < n_errors; e++) {
            error[e] = _mm256_sub_pd(_mm256_set1_pd(targets[e]), output[e]);
            const __m256d slope = _mm256_mul_pd(output[e], _mm256_sub_pd(one, output[e]));
            deltas[n_layers - 1][e] = _mm256_mul_pd(error[e], slope);
            magnitude[e] = _mm256_andnot_pd(sign, error[e]);
        }
        /* bookkeeping, lane by lane, in the order train.py does it */
        double sums[LANES], margins[LANES];
        _mm256_storeu_pd(sums, pairwise_sum(magnitude, n_errors));
        const int logged = slot < n_points && log_points[slot] == it;
        for (int l = 0; l < LANES; l++) {
            margins[l] = sums[l] / (double)n_errors;
            if (status[l] != 1)
                continue;
            if (logged)
                curves[slot * LANES + l] = margins[l];
            if (!(sums[l] < INFINITY)) {
                status[l] = -1;
                reached[l] = it + 1;
                final_error[l] = margins[l];
                const double *out_lanes = (const double *)output;
                for (int64_t e = 0; e < n_errors; e++)
                    final_output[e * LANES + l] = out_lanes[e * LANES + l];
                double *lanes = (double *)weights_data;
                for (int64_t w = 0; w < n_weights; w++) {
                    saved_weights[w * LANES + l] = lanes[w * LANES + l];
                    lanes[w * LANES + l] = 0.0;
                }
                continue;
            }
            if (first_below[l] < 0 && margins[l] < threshold)
                first_below[l] = it;
            if (it == last) {
                final_error[l] = margins[l];
                const double *out_lanes = (const double *)output;
                for (int64_t e = 0; e < n_errors; e++)
                    final_output[e * LANES + l] = out_lanes[e * LANES + l];
            }
        }
        if (logged)
            slot++;
        /* deltas of the hidden layers, through the old weights: (n, b) . (a, b)^T */
        for (int64_t k = n_layers - 1; k > 0; k--) {
            const int64_t a = units[k], b = units[k + 1];
            product(deltas[k], b, 1, weights[k], 1, b, deltas[k - 1], n_samples, b, a,
                    PULLBACK, outputs[k - 1], rate);
        }
        /* W_k += lr * (L_k^T . delta_k): (a, n) . (n, b) */
        const int update = scaled ? UPDATE_SCALED : UPDATE;
        for (int64_t k = 0; k < n_layers; k++) {
            const int64_t a = units[k], b = units[k + 1];
            if (k == 0)
                product_data(inputs, 1, a, deltas[0], b, 1, weights[0], a, n_samples, b,
                             update, weights[0], rate);
            else
                product(outputs[k - 1], 1, a, deltas[k], b, 1, weights[k], a, n_samples, b,
                        update, weights[k], rate);
        }
    }
    return stop;
}

#else /* not x86-64 with GCC or Clang: numpy does the work */

int64_t nn_lanes(void) { return LANES; }
int64_t nn_available(void) { return 0; }

#endif
