// The sustained-rate benchmark's target: THREADS threads call paced_hit() RATE times a second in
// all, for SECONDS, then it prints "CALLS ACHIEVED_RATE".
//   paced RATE SECONDS THREADS
// Each thread is paced in 1 ms steps: it makes the calls due by the end of the step, then sleeps
// to the step's end (clock_nanosleep, TIMER_ABSTIME). A busy-waiting pace would keep every core
// busy at any rate, and measure how the scheduler shares them with the tracer's drainer rather
// than how fast the drainer is. A thread that falls behind catches up in the next step; the
// achieved rate says whether the target kept up at all.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Long enough (an 8-byte body) for the jump backend's 5-byte jump. */
__attribute__((noipa)) long paced_hit(long x) { return x + 0x12345678; }

static double per_thread_rate;
static long steps;
static struct timespec start;

static void *work(void *arg)
{
    (void)arg;
    long sum = 0, done = 0;
    for (long step = 1; step <= steps; step++) {
        long due = (long)(per_thread_rate * step / 1000.0);
        while (done < due)
            sum += paced_hit(done++);
        struct timespec until = start;
        until.tv_sec += step / 1000;
        until.tv_nsec += (step % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
    }
    return (void *)(sum == 42 ? 0 : done);  /* the sum keeps the calls; the count is returned */
}

int main(int argc, char **argv)
{
    double rate = argc > 1 ? atof(argv[1]) : 1e6;
    double seconds = argc > 2 ? atof(argv[2]) : 1;
    int threads = argc > 3 ? atoi(argv[3]) : 4;
    if (threads < 1 || threads > 64)
        return 2;
    per_thread_rate = rate / threads;
    steps = (long)(seconds * 1000);
    pthread_t t[64];
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, work, (void *)i);
    long calls = 0;
    for (int i = 0; i < threads; i++) {
        void *r;
        pthread_join(t[i], &r);
        calls += (long)r;
    }
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    double elapsed = (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    printf("%ld %.0f\n", calls, calls / elapsed);
    return 0;
}
