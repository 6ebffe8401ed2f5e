#include <stdio.h>

int main(void) {
    puts("hello from a static C binary built by kiln");
    return 0;
}
