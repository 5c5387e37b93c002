/*
 * Cross-checks the kernel's scalar path on another architecture (aarch64 under qemu-user):
 * reads cases (networks, data, initial weights as hex floats) on stdin, trains each seed
 * alone with PATH_SCALAR, and prints its curve, final margin and final weights as hex floats
 * for tests/test_cross.py to compare, bit for bit, with the numpy implementation on x86-64.
 *
 * Input, whitespace-separated: n_cases, then per case:
 *   n_layers units[0..n_layers] activations[0..n_layers-1] has_bias n_samples lr iterations
 *   n_points log_points[n_points] n_seeds inputs[n_samples*units[0]]
 *   targets[n_samples*units[n_layers]], then per seed its weights (layer by layer, row-major)
 *   and, with has_bias, its biases (layer by layer).
 * Output per seed, one line, all as hex floats: status reached curve[n_points] final_error
 * weights... biases... scored (the margin of the final weights; a stopped seed's own).
 */
#include "../../nnsweep/train/_kernel.c"

#include <stdio.h>

static double read_double(void)
{
    char text[64];
    if (scanf("%63s", text) != 1)
        exit(3);
    return strtod(text, NULL);
}

static int64_t read_int(void)
{
    long long value;
    if (scanf("%lld", &value) != 1)
        exit(3);
    return (int64_t)value;
}

static double *read_doubles(int64_t n)
{
    double *values = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        values[i] = read_double();
    return values;
}

int main(void)
{
    const int64_t n_cases = read_int();
    for (int64_t c = 0; c < n_cases; c++) {
        int64_t units[MAX_LAYERS + 1], activations[MAX_LAYERS];
        const int64_t n_layers = read_int();
        for (int64_t k = 0; k <= n_layers; k++)
            units[k] = read_int();
        for (int64_t k = 0; k < n_layers; k++)
            activations[k] = read_int();
        const int64_t has_bias = read_int(), n_samples = read_int();
        const double lr = read_double();
        const int64_t iterations = read_int(), n_points = read_int();
        int64_t *points = malloc((size_t)(n_points + 1) * sizeof(int64_t));
        for (int64_t p = 0; p < n_points; p++)
            points[p] = read_int();
        const int64_t n_seeds = read_int();
        double *inputs = read_doubles(n_samples * units[0]);
        double *targets = read_doubles(n_samples * units[n_layers]);
        int64_t n_weights = 0, n_biases = 0;
        for (int64_t k = 0; k < n_layers; k++) {
            n_weights += units[k] * units[k + 1];
            n_biases += units[k + 1];
        }
        for (int64_t s = 0; s < n_seeds; s++) {
            double *weights = read_doubles(n_weights);
            double *biases = has_bias ? read_doubles(n_biases) : NULL;
            double *curves = malloc((size_t)(n_points + 1) * sizeof(double));
            double *output = malloc((size_t)(n_samples * units[n_layers]) * sizeof(double));
            double *saved = malloc((size_t)n_weights * sizeof(double));
            double *saved_biases = malloc((size_t)(n_biases + 1) * sizeof(double));
            double final_error = NAN;
            int64_t reached = iterations, first_below = -1, status = 1, progress = 0, stop = 0;
            for (int64_t p = 0; p < n_points; p++)
                curves[p] = NAN;
            struct nn_net net = {
                1, n_layers, units, activations, has_bias, n_samples, inputs, targets, lr, 0.01,
                iterations, points, n_points, &stop, &progress, weights, biases, curves,
                &final_error, output, saved, saved_biases, &reached, &first_below, &status,
            };
            if (nn_train(PATH_SCALAR, &net) != iterations)
                return 4;
            double *final_weights = status == -1 ? saved : weights;
            double *final_biases = status == -1 ? saved_biases : biases;
            /* scored: the margin of the final weights (one forward pass, as nnsweep scores a
             * seed), or for a stopped seed the non-finite margin that stopped it */
            double scored = final_error;
            if (status != -1) {
                net.weights = final_weights;
                net.biases = final_biases;
                net.final_error = &scored;
                if (nn_evaluate(PATH_SCALAR, &net) != 0)
                    return 5;
            }
            printf("%a %a", (double)status, (double)reached);
            for (int64_t p = 0; p < n_points; p++)
                printf(" %a", curves[p]);
            printf(" %a", final_error);
            for (int64_t w = 0; w < n_weights; w++)
                printf(" %a", final_weights[w]);
            for (int64_t b = 0; has_bias && b < n_biases; b++)
                printf(" %a", final_biases[b]);
            printf(" %a\n", scored);
            free(weights);
            free(biases);
            free(curves);
            free(output);
            free(saved);
            free(saved_biases);
        }
        free(points);
        free(inputs);
        free(targets);
    }
    return 0;
}
