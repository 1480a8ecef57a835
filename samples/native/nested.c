// Return probes the hard way, for both backends: recursion, a longjmp out of probed frames, a
// function that is asleep when the tracer detaches, and fork and vfork children that inherit the
// breakpoints. Built by the tests: gcc -O1 -g -o nested nested.c
// Usage: nested ROUNDS NAP_MS   (prints "total N"; exits 3 if a forked child came back wrong)
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noipa)) long fact(long n) { return n <= 1 ? 1 : n * fact(n - 1); }

static jmp_buf out;
__attribute__((noipa)) int bail(int depth)
{
    if (depth == 0)
        longjmp(out, 1);
    return bail(depth - 1) + 1;
}

__attribute__((noipa)) int nap(int ms)
{
    usleep(ms * 1000);
    return ms;
}

// The child returns from here too: through its own copy of the stack.
__attribute__((noipa)) int spawn_child(void) { return fork(); }

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 10;
    int nap_ms = argc > 2 ? atoi(argv[2]) : 1;
    long sum = 0;
    for (int r = 0; r < rounds; r++) {
        sum += fact(10);
        if (!setjmp(out))
            sum += bail(3);
        sum += fact(3);
        sum += nap(nap_ms);
        int child = spawn_child();
        if (child == 0)
            _exit(fact(5) == 120 ? 0 : 1);
        int status;
        waitpid(child, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return 3;
        child = vfork();
        if (child == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        waitpid(child, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return 3;
    }
    printf("total %ld\n", sum);
    return 0;
}
