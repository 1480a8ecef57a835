// Calls the sample's own shared library: gcc -O1 -g -o uselib uselib.c -L. -lcalc -Wl,-rpath,'$ORIGIN'
#include <stdio.h>
#include <stdlib.h>
int calc_mul(int a, int b);
int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100;
    long total = 0;
    for (int i = 0; i < n; i++)
        total += calc_mul(i, 3);
    printf("total %ld\n", total);
    return 0;
}
