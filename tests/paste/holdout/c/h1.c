#include <stdio.h>

int main(void)
{
    FILE *fp = fopen("data.txt", "r");
    char line[256];
    int count = 0;

    if (fp == NULL) {
        perror("fopen");
        return 1;
    }
    while (fgets(line, sizeof line, fp) != NULL)
        count++;
    fclose(fp);
    printf("%d lines\n", count);
    return 0;
}
