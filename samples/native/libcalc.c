// A shared library of the sample: gcc -O1 -g -shared -fPIC -o libcalc.so libcalc.c
__attribute__((noipa)) int calc_mul(int a, int b) { return a * b; }
