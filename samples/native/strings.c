// Strings four ways, from 4 threads, in a program that exits as soon as they are done: a stack
// buffer rewritten before every call, a literal in .rodata, a heap string each thread keeps to the end, and one freed right after the call.
// Built by the tests: gcc -O2 -g -pthread -o strings strings.c
// Usage: strings ITERATIONS   (prints "total N")
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noipa)) long label(const char *text, int i) { return (long)strlen(text) + i; }
__attribute__((noipa)) long transient(const char *text, int i) { return (long)strlen(text) + i; }

static int iterations;

static void *work(void *arg)
{
    long id = (long)arg, sum = 0;
    char buf[32];
    char *mine = malloc(32);
    snprintf(mine, 32, "heap-%ld", id);
    for (int i = 0; i < iterations; i++) {
        snprintf(buf, sizeof buf, "t%ld-%d", id, i);
        sum += label(buf, i);
        sum += label("constant", 1000000 + i);
        sum += label(mine, 2000000 + i);
        // Freed right after the call, and the next malloc gets the same block back.
        char *gone = malloc(32);
        snprintf(gone, 32, "tmp%ld-%d", id, i);
        sum += transient(gone, i);
        free(gone);
    }
    // Kept to the end: the perf backend without tracefs reads a heap string when it drains the
    // ring (at the latest when the thread exits).
    return (void *)sum;
}

int main(int argc, char **argv)
{
    iterations = argc > 1 ? atoi(argv[1]) : 100;
    pthread_t t[4];
    long total = 0;
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, work, (void *)i);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (long)r;
    }
    printf("total %ld\n", total);
    return 0;
}
