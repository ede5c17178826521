#include "bench_test_util.h"
int main(void) { return 77; }
