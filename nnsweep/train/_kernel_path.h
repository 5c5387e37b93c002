/*
 * One path of the kernel (scalar, AVX2 or AVX-512F): included once per path by _kernel.c,
 * after it has defined the vector type V, its lane count NL, the register tile TI x TJ, the
 * number of vectors EXPW that exp interleaves,
 * TARGET (the function attribute that enables the instruction set), FN(name) (the path's
 * suffix) and the operations:
 *   V_ZERO, V_SET1(d), V_ADD, V_SUB, V_MUL, V_DIV   one IEEE operation per lane
 *   V_ABS(v), V_NEG(v)                              exact sign-bit manipulation
 *   V_COPYSIGN(q, z)                                q's magnitude, z's sign bit
 *   V_RELU(z)                                       z unless z <= 0, else +0.0 (NaN passes)
 *   V_STEP(a)                                       1.0 where a > 0, else 0.0
 *   V_MIN(v, c), V_MAX(v, c)                        the clamps of exp (v is no NaN)
 *   V_NAN_ZERO(x), V_NAN_KEEP(r, x)                 0.0 / x in the lanes where x is NaN
 *   V_ANY_NAN(x)                                    1 when some lane of x is NaN, else 0
 *   V_SCALES(t, s1, s2)                             2^n1 and 2^n2 from t = SHIFT + n
 *   V_TO_LANES(double *out, V v)                    the NL doubles of v
 * Every formula below is the spec's (docs: ARITHMETIC.md, "portable"), in its order: no
 * operation is fused, reordered or skipped, whatever the values.
 */

/* ---- exp: EXPW vectors at a time, each step across all of them, so that the long
 * dependency chains (13 Horner steps) of independent vectors overlap in the pipeline ---- */

TARGET static inline void FN(exp_w)(V *x)
{
    V v[EXPW], t[EXPW], r[EXPW], p[EXPW];
    int any_nan = 0;
    for (int w = 0; w < EXPW; w++)
        any_nan |= V_ANY_NAN(x[w]);
    for (int w = 0; w < EXPW; w++) {
        v[w] = any_nan ? V_NAN_ZERO(x[w]) : x[w]; /* 1. a NaN lane computes on 0.0 */
        v[w] = V_MIN(v[w], V_SET1(EXP_HI)); /* 2. clamp */
        v[w] = V_MAX(v[w], V_SET1(EXP_LO));
    }
    for (int w = 0; w < EXPW; w++) { /* 3. n = round-half-even(x / ln2), t = SHIFT + n */
        t[w] = V_MUL(v[w], V_SET1(EXP_INV_LN2));
        t[w] = V_ADD(t[w], V_SET1(EXP_SHIFT));
    }
    for (int w = 0; w < EXPW; w++) { /* 4. r = (x - n * LN2_HI) - n * LN2_LO */
        const V n = V_SUB(t[w], V_SET1(EXP_SHIFT));
        r[w] = V_SUB(v[w], V_MUL(n, V_SET1(EXP_LN2_HI)));
        r[w] = V_SUB(r[w], V_MUL(n, V_SET1(EXP_LN2_LO)));
    }
    for (int w = 0; w < EXPW; w++) /* 5. Horner from C[13] */
        p[w] = V_SET1(EXP_C[13]);
    for (int k = 12; k >= 0; k--)
        for (int w = 0; w < EXPW; w++)
            p[w] = V_ADD(V_MUL(p[w], r[w]), V_SET1(EXP_C[k]));
    for (int w = 0; w < EXPW; w++) { /* 6. (p * 2^n1) * 2^n2; NaN lanes get their NaN */
        V s1, s2;
        V_SCALES(t[w], s1, s2);
        const V result = V_MUL(V_MUL(p[w], s1), s2);
        x[w] = any_nan ? V_NAN_KEEP(result, x[w]) : result;
    }
}

/* ---- activations of EXPW vectors in place, and the slope s taken at the output a ---- */

TARGET static inline void FN(activate_w)(V *z, int64_t kind)
{
    const V one = V_SET1(1.0);
    V e[EXPW];
    if (kind == ACT_SIGMOID) {
        for (int w = 0; w < EXPW; w++)
            e[w] = V_NEG(z[w]);
        FN(exp_w)(e);
        for (int w = 0; w < EXPW; w++)
            z[w] = V_DIV(one, V_ADD(one, e[w]));
    } else if (kind == ACT_TANH) {
        for (int w = 0; w < EXPW; w++)
            e[w] = V_MUL(V_SET1(-2.0), V_ABS(z[w]));
        FN(exp_w)(e);
        for (int w = 0; w < EXPW; w++)
            z[w] = V_COPYSIGN(V_DIV(V_SUB(one, e[w]), V_ADD(one, e[w])), z[w]);
    } else {
        for (int w = 0; w < EXPW; w++)
            z[w] = V_RELU(z[w]);
    }
}

/* z[0..n) = activation(z), EXPW vectors at a time (a short tail through a padded copy) */
TARGET static void FN(activate)(V *z, int64_t n, int64_t kind)
{
    int64_t e = 0;
    for (; e + EXPW <= n; e += EXPW)
        FN(activate_w)(z + e, kind);
    if (e < n) {
        V pad[EXPW];
        for (int w = 0; w < EXPW; w++)
            pad[w] = e + w < n ? z[e + w] : V_ZERO;
        FN(activate_w)(pad, kind);
        for (int w = 0; e + w < n; w++)
            z[e + w] = pad[w];
    }
}

TARGET static inline V FN(slope)(V a, int64_t kind)
{
    const V one = V_SET1(1.0);
    if (kind == ACT_SIGMOID)
        return V_MUL(a, V_SUB(one, a));
    if (kind == ACT_TANH)
        return V_SUB(one, V_MUL(a, a));
    return V_STEP(a);
}

/* y[i] = exp(x[i]) for n values (for tests), through the same exp_w. */
TARGET static void FN(exp_array)(const double *x, double *y, int64_t n)
{
    const int64_t chunk = NL * EXPW;
    for (int64_t i = 0; i < n; i += chunk) {
        double lanes[NL * EXPW] = {0};
        const int64_t m = n - i < chunk ? n - i : chunk;
        memcpy(lanes, x + i, (size_t)m * sizeof(double));
        V v[EXPW];
        memcpy(v, lanes, sizeof v);
        FN(exp_w)(v);
        memcpy(lanes, v, sizeof v);
        memcpy(y + i, lanes, (size_t)m * sizeof(double));
    }
}

/*
 * out(i, j) <- sum_k A(i, k) * B(k, j), each sum started from its first product and added
 * in order k = 0, 1, ..., for i < ni, j < nj; A(i, k) = A[i * ai + k * ak],
 * B(k, j) = B[k * bk + j * bj], out(i, j) = O[i * oi + j]. What happens to each finished
 * sum g: PRODUCT_STORE: out = g; PRODUCT_ADD: out = out + g; PRODUCT_SCALED: out = out +
 * (rate * g). Tiles of TI x TJ independent sums stay in registers so that the additions'
 * latencies overlap; the order within each sum is the spec's. Edge tiles repeat their last
 * row or column (clamped indices) and store only the real ones.
 */
TARGET static void FN(product)(const V *restrict A, int64_t ai, int64_t ak,
                               const V *restrict B, int64_t bk, int64_t bj, V *restrict O,
                               int64_t oi, int64_t ni, int64_t nk, int64_t nj, int kind, V rate)
{
    for (int64_t i0 = 0; i0 < ni; i0 += TI) {
        const V *a[TI];
        for (int t = 0; t < TI; t++)
            a[t] = A + (i0 + t < ni ? i0 + t : ni - 1) * ai;
        for (int64_t j0 = 0; j0 < nj; j0 += TJ) {
            const V *b[TJ];
            for (int u = 0; u < TJ; u++)
                b[u] = B + (j0 + u < nj ? j0 + u : nj - 1) * bj;
            V acc[TI][TJ];
            for (int t = 0; t < TI; t++)
                for (int u = 0; u < TJ; u++)
                    acc[t][u] = V_MUL(a[t][0], b[u][0]);
            for (int64_t k = 1; k < nk; k++) {
                V x[TI], y[TJ];
                for (int t = 0; t < TI; t++)
                    x[t] = a[t][k * ak];
                for (int u = 0; u < TJ; u++)
                    y[u] = b[u][k * bk];
                for (int t = 0; t < TI; t++)
                    for (int u = 0; u < TJ; u++)
                        acc[t][u] = V_ADD(acc[t][u], V_MUL(x[t], y[u]));
            }
            for (int t = 0; t < TI; t++) {
                if (i0 + t >= ni)
                    break;
                for (int u = 0; u < TJ; u++) {
                    if (j0 + u >= nj)
                        break;
                    V *o = O + (i0 + t) * oi + j0 + u;
                    if (kind == PRODUCT_STORE)
                        *o = acc[t][u];
                    else if (kind == PRODUCT_ADD)
                        *o = V_ADD(*o, acc[t][u]);
                    else
                        *o = V_ADD(*o, V_MUL(rate, acc[t][u]));
                }
            }
        }
    }
}

/* The block's buffers, carved from one aligned allocation (lanes innermost everywhere). */
struct FN(work) {
    V *inputs;              /* (rows, units[0]): the data, the same in every lane */
    V *weights[MAX_LAYERS]; /* (units[k], units[k+1]) */
    V *biases[MAX_LAYERS];  /* (units[k+1]) or unused */
    V *outputs[MAX_LAYERS]; /* (rows, units[k+1]): layer k's output */
    V *deltas[MAX_LAYERS];  /* (rows, units[k+1]) */
    V *pulled;              /* (rows, max width): a layer's error before its slope */
    void *memory;
};

TARGET static size_t FN(work_size)(const struct nn_net *net)
{
    const int64_t rows = net->n_samples, *units = net->units;
    int64_t widest = 0, count = rows * units[0];
    for (int64_t k = 0; k < net->n_layers; k++) {
        count += units[k] * units[k + 1] + units[k + 1] + 2 * rows * units[k + 1];
        widest = units[k + 1] > widest ? units[k + 1] : widest;
    }
    count += rows * widest;
    return (size_t)count * sizeof(V);
}

TARGET static int FN(work_open)(struct FN(work) *work, const struct nn_net *net)
{
    const int64_t rows = net->n_samples, *units = net->units;
    char *memory = malloc(FN(work_size)(net) + 64);
    if (memory == NULL)
        return 0;
    work->memory = memory;
    V *cursor = (V *)(memory + (64 - (uintptr_t)memory % 64));
    work->inputs = cursor;
    cursor += rows * units[0];
    for (int64_t k = 0; k < net->n_layers; k++) {
        work->weights[k] = cursor;
        cursor += units[k] * units[k + 1];
        work->biases[k] = cursor;
        cursor += units[k + 1];
        work->outputs[k] = cursor;
        cursor += rows * units[k + 1];
        work->deltas[k] = cursor;
        cursor += rows * units[k + 1];
    }
    work->pulled = cursor;
    for (int64_t e = 0; e < rows * units[0]; e++)
        work->inputs[e] = V_SET1(net->inputs[e]);
    const double *weights = net->weights, *biases = net->biases;
    for (int64_t k = 0; k < net->n_layers; k++) {
        const int64_t n = units[k] * units[k + 1];
        memcpy(work->weights[k], weights, (size_t)n * sizeof(V));
        weights += n * NL;
        for (int64_t j = 0; j < units[k + 1]; j++)
            work->biases[k][j] = V_ZERO;
        if (net->has_bias) {
            memcpy(work->biases[k], biases, (size_t)units[k + 1] * sizeof(V));
            biases += units[k + 1] * NL;
        }
    }
    return 1;
}

/* Copy lane `lane` (or, when lane < 0, every lane) of the weights and biases out. */
TARGET static void FN(copy_out)(const struct FN(work) *work, const struct nn_net *net, double *weights,
                         double *biases, int lane)
{
    const int64_t *units = net->units;
    for (int64_t k = 0; k < net->n_layers; k++) {
        const int64_t n = units[k] * units[k + 1], nb = units[k + 1];
        const double *w = (const double *)work->weights[k], *b = (const double *)work->biases[k];
        if (lane < 0) {
            memcpy(weights, w, (size_t)(n * NL) * sizeof(double));
        } else {
            for (int64_t e = 0; e < n; e++)
                weights[e * NL + lane] = w[e * NL + lane];
        }
        weights += n * NL;
        if (net->has_bias) {
            if (lane < 0) {
                memcpy(biases, b, (size_t)(nb * NL) * sizeof(double));
            } else {
                for (int64_t e = 0; e < nb; e++)
                    biases[e * NL + lane] = b[e * NL + lane];
            }
            biases += nb * NL;
        }
    }
}

/* A stopped lane trains on zeros from now on: harmless numbers, no NaN or subnormals. */
TARGET static void FN(silence)(struct FN(work) *work, const struct nn_net *net, int lane)
{
    const int64_t *units = net->units;
    for (int64_t k = 0; k < net->n_layers; k++) {
        double *w = (double *)work->weights[k], *b = (double *)work->biases[k];
        for (int64_t e = 0; e < units[k] * units[k + 1]; e++)
            w[e * NL + lane] = 0.0;
        for (int64_t e = 0; e < units[k + 1]; e++)
            b[e * NL + lane] = 0.0;
    }
}

/* The forward pass of the current weights: every layer's output. */
TARGET static void FN(forward)(struct FN(work) *work, const struct nn_net *net)
{
    const int64_t rows = net->n_samples, *units = net->units;
    for (int64_t k = 0; k < net->n_layers; k++) {
        const int64_t a = units[k], b = units[k + 1], kind = net->activations[k];
        const V *in = k == 0 ? work->inputs : work->outputs[k - 1];
        V *out = work->outputs[k];
        FN(product)(in, a, 1, work->weights[k], b, 1, out, b, rows, a, b, PRODUCT_STORE, V_ZERO);
        if (net->has_bias) {
            const V *bias = work->biases[k];
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < b; j++)
                    out[r * b + j] = V_ADD(out[r * b + j], bias[j]);
        }
        FN(activate)(out, rows * b, kind);
    }
}

/*
 * Train one block of NL seeds through every iteration: the spec's iteration, plus the
 * bookkeeping of nnsweep/train/loop.py's numpy loop, lane by lane (see struct nn_net).
 * Returns the iterations done: net->iterations, fewer when the stop flag was raised, or -1
 * when memory ran out.
 */
TARGET static int64_t FN(train)(const struct nn_net *net)
{
    struct FN(work) work;
    if (!FN(work_open)(&work, net))
        return -1;
    const int64_t rows = net->n_samples, n_layers = net->n_layers, *units = net->units;
    const int64_t n_out = units[n_layers], n_errors = rows * n_out, last = net->iterations - 1;
    const double divisor = (double)n_errors;
    const int scaled = net->lr != 1.0;
    const V rate = V_SET1(net->lr);
    const int product_update = scaled ? PRODUCT_SCALED : PRODUCT_ADD;
    int64_t slot = 0, waiting = 0, done = net->iterations;
    for (int l = 0; l < NL; l++)
        waiting += net->status[l] == 1;

    for (int64_t it = 0; it < net->iterations; it++) {
        if (*net->stop_flag) {
            done = it;
            break;
        }
        FN(forward)(&work, net);

        /* error, the output layer's delta, and the error margin's sum */
        const V *output = work.outputs[n_layers - 1];
        V *delta = work.deltas[n_layers - 1];
        const int64_t out_kind = net->activations[n_layers - 1];
        V sum = V_ZERO;
        for (int64_t e = 0; e < n_errors; e++) {
            const V err = V_SUB(V_SET1(net->targets[e]), output[e]);
            delta[e] = V_MUL(err, FN(slope)(output[e], out_kind));
            sum = e == 0 ? V_ABS(err) : V_ADD(sum, V_ABS(err));
        }

        /* bookkeeping, lane by lane, as the numpy loop records it */
        double sums[NL];
        V_TO_LANES(sums, sum);
        const int logged = slot < net->n_points && net->log_points[slot] == it;
        int stopped_now = 0;
        for (int l = 0; l < NL; l++) {
            if (net->status[l] != 1)
                continue;
            const double margin = sums[l] / divisor;
            if (logged)
                net->curves[slot * NL + l] = margin;
            if (!(sums[l] < INFINITY)) {
                net->status[l] = -1;
                net->reached[l] = it + 1;
                net->final_error[l] = margin;
                const double *lanes = (const double *)output;
                for (int64_t e = 0; e < n_errors; e++)
                    net->final_output[e * NL + l] = lanes[e * NL + l];
                FN(copy_out)(&work, net, net->saved_weights, net->saved_biases, l);
                stopped_now = 1;
                continue;
            }
            if (net->first_below[l] < 0 && margin < net->threshold)
                net->first_below[l] = it;
            if (it == last) {
                net->final_error[l] = margin;
                const double *lanes = (const double *)output;
                for (int64_t e = 0; e < n_errors; e++)
                    net->final_output[e * NL + l] = lanes[e * NL + l];
            }
        }
        if (logged)
            slot++;

        /* deltas of the hidden layers, through the old weights */
        for (int64_t k = n_layers - 1; k > 0; k--) {
            const int64_t a = units[k], b = units[k + 1], kind = net->activations[k - 1];
            FN(product)(work.deltas[k], b, 1, work.weights[k], 1, b, work.pulled, a, rows, b, a,
                        PRODUCT_STORE, V_ZERO);
            const V *activity = work.outputs[k - 1];
            V *pulled_delta = work.deltas[k - 1];
            for (int64_t e = 0; e < rows * a; e++)
                pulled_delta[e] = V_MUL(work.pulled[e], FN(slope)(activity[e], kind));
        }

        /* updates: W += L^T . delta (times lr), b += the sum of delta over rows */
        for (int64_t k = 0; k < n_layers; k++) {
            const int64_t a = units[k], b = units[k + 1];
            const V *in = k == 0 ? work.inputs : work.outputs[k - 1];
            FN(product)(in, 1, a, work.deltas[k], b, 1, work.weights[k], b, a, rows, b,
                        product_update, rate);
            if (net->has_bias) {
                const V *d = work.deltas[k];
                V *bias = work.biases[k];
                for (int64_t j = 0; j < b; j++) {
                    V step = d[j];
                    for (int64_t r = 1; r < rows; r++)
                        step = V_ADD(step, d[r * b + j]);
                    if (scaled)
                        step = V_MUL(rate, step);
                    bias[j] = V_ADD(bias[j], step);
                }
            }
        }
        if (stopped_now)
            for (int l = 0; l < NL; l++)
                if (net->status[l] == -1)
                    FN(silence)(&work, net, l);
        *net->progress = it + 1;
    }
    FN(copy_out)(&work, net, net->weights, net->biases, -1);
    free(work.memory);
    return done;
}

/* One forward pass of the given weights: outputs (rows, n_out, NL) and margins (NL). */
TARGET static int64_t FN(evaluate)(const struct nn_net *net)
{
    struct FN(work) work;
    if (!FN(work_open)(&work, net))
        return -1;
    FN(forward)(&work, net);
    const int64_t n_errors = net->n_samples * net->units[net->n_layers];
    const V *output = work.outputs[net->n_layers - 1];
    V sum = V_ZERO;
    for (int64_t e = 0; e < n_errors; e++) {
        const V err = V_SUB(V_SET1(net->targets[e]), output[e]);
        sum = e == 0 ? V_ABS(err) : V_ADD(sum, V_ABS(err));
    }
    double sums[NL];
    V_TO_LANES(sums, sum);
    for (int l = 0; l < NL; l++)
        net->final_error[l] = sums[l] / (double)n_errors;
    memcpy(net->final_output, output, (size_t)n_errors * sizeof(V));
    free(work.memory);
    return 0;
}
