// The uprobe benchmark's target: waits START_MS (time for a tracer to attach), calls hit()
// ITERATIONS times (hit_wide() with a third argument "wide"), and prints the mean nanoseconds per call.
//   bench ITERATIONS START_MS [wide]
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

__attribute__((noipa)) int hit(int x) { return x + 1; }
/* Long enough (an 8-byte body) for the jump backend's 5-byte jump; hit() is 4 bytes. */
__attribute__((noipa)) long hit_wide(long x) { return x + 0x12345678; }

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int start_ms = argc > 2 ? atoi(argv[2]) : 0;
    if (start_ms)
        usleep(start_ms * 1000);
    struct timespec a, b;
    long sum = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (argc > 3 && argv[3][0] == 'w')
        for (long i = 0; i < n; i++)
            sum += hit_wide(i);
    else
        for (long i = 0; i < n; i++)
            sum += hit((int)i);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    printf("%.2f %ld\n", ns / n, sum);
    return 0;
}
