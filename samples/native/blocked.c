// A program that blocks every signal it can (as signalfd and sigwait designs do) and calls tick()
// ROUNDS times, DELAY_MS apart. A tracer must still be able to detach from it promptly.
// Built by the tests: gcc -O1 -g -o blocked blocked.c
// Usage: blocked ROUNDS DELAY_MS   (prints "total N")
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((noipa)) int tick(int i) { return i * 2; }
__attribute__((noipa)) int never_called(int i) { return i; }

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 10;
    int delay_ms = argc > 2 ? atoi(argv[2]) : 100;
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    long total = 0;
    for (int i = 0; i < rounds; i++) {
        total += tick(i);
        usleep(delay_ms * 1000);
    }
    if (total < 0)
        total += never_called(1);
    printf("total %ld\n", total);
    return 0;
}
