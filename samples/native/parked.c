// Threads parked where a 5-byte jump over a function's entry would be unsafe, for the jump
// backend's refusals. Prints "ready" once the thread is parked, and "ok" at the end.
//   parked spin SECONDS      a thread spins in spin_entry, whose loop is its first bytes
//   parked syscall SECONDS   a thread sleeps in a nanosleep whose restart is inside park's first bytes
//   parked signal SECONDS    a thread faults inside faulty's first bytes and sleeps in the SIGSEGV handler
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

volatile char stop_spinning;

/* pause; pause; cmpb $0, stop_spinning(%rip); je spin_entry; ret: every instruction but the
   branch is among the first 5 bytes, and the branch goes to the entry itself (which a jump may). */
__attribute__((naked, noinline)) long spin_entry(void)
{
    __asm__("pause\n pause\n cmpb $0, stop_spinning(%rip)\n je spin_entry\n xor %eax, %eax\n ret\n");
}

/* nanosleep(rdi, rsi) with its syscall at bytes 4-5: interrupted, the kernel restarts it by
   rewinding rip to byte 4, inside the bytes a jump would replace. */
__attribute__((naked, noinline)) long park(const struct timespec *ts, struct timespec *rest)
{
    __asm__("xor %eax, %eax\n mov $35, %al\n syscall\n ret\n");
}

/* Reads *rdi at byte 1: a fault there leaves a signal frame whose saved rip is byte 1. */
__attribute__((naked, noinline)) long faulty(const char *p)
{
    __asm__("nop\n movb (%rdi), %al\n nopl (%rax)\n movzbl %al, %eax\n ret\n");
}

static double seconds;
static char *guarded;

static void sleep_seconds(void)
{
    struct timespec ts = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void on_segv(int sig, siginfo_t *info, void *context)
{
    (void)sig; (void)info; (void)context;
    write(1, "ready\n", 6);
    sleep_seconds();
    mprotect(guarded, 4096, PROT_READ | PROT_WRITE);  /* the read at byte 1 succeeds when retried */
}

static void *spinner(void *arg)
{
    (void)arg;
    spin_entry();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    seconds = atof(argv[2]);
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(argv[1], "spin")) {
        pthread_t t;
        pthread_create(&t, NULL, spinner, NULL);
        printf("ready\n");
        sleep_seconds();
        stop_spinning = 1;
        pthread_join(t, NULL);
    } else if (!strcmp(argv[1], "syscall")) {
        struct timespec ts = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
        printf("ready\n");
        if (park(&ts, NULL) != 0)
            return 3;
    } else if (!strcmp(argv[1], "signal")) {
        guarded = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        struct sigaction sa = { 0 };
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSEGV, &sa, NULL);
        if (faulty(guarded) != 0)
            return 3;
    } else
        return 2;
    printf("ok\n");
    return 0;
}
