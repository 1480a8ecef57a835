// noipa keeps gcc from cloning the functions or hoisting calls of these pure functions out of
// loops, so every call in the source is a call at run time.
// Native targets for ProbeGen's uprobe engine: functions with arguments of every width, strings,
// six register arguments and return values, called from several threads. Built by the tests:
//   gcc -O1 -g -pthread -o targets targets.c          (PIE, the Debian default)
//   gcc -O1 -g -pthread -no-pie -o targets-nopie targets.c
// Usage: targets ITERATIONS THREADS [DELAY_MS [LINGER_MS]]   (prints "total N", then lingers before exiting)
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noipa)) long add6(long a, long b, long c, long d, long e, long f) { return a + b + c + d + e + f; }
__attribute__((noipa)) int greet(const char *name, int times) { return (int)strlen(name) * times; }
__attribute__((noipa)) int widths(signed char i8, short i16, unsigned char u8, unsigned short u16, int i32, unsigned long u64)
{
    return i8 + i16 + u8 + u16 + i32 + (int)(u64 & 0xff);
}

static long iterations;
static int delay_ms;

static void *work(void *arg)
{
    long id = (long)arg, sum = 0;
    for (long i = 0; i < iterations; i++) {
        sum += add6(i, 1, 2, 3, 4, id);
        sum += greet(i % 2 ? "probe" : "gen", 2);
        sum += widths(-5, -300, 200, 60000, -70000, 0x1234567890abcdefUL);
        if (delay_ms)
            usleep(delay_ms * 1000);
    }
    return (void *)sum;
}

int main(int argc, char **argv)
{
    iterations = argc > 1 ? atol(argv[1]) : 1000;
    int threads = argc > 2 ? atoi(argv[2]) : 4;
    delay_ms = argc > 3 ? atoi(argv[3]) : 0;
    int linger_ms = argc > 4 ? atoi(argv[4]) : 0;
    pthread_t t[64];
    long total = 0;
    for (long i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, work, (void *)i);
    for (int i = 0; i < threads; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (long)r;
    }
    printf("total %ld\n", total);
    fflush(stdout);
    if (linger_ms)
        usleep(linger_ms * 1000);
    return 0;
}
