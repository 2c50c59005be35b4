#include <string.h>
#include <ctype.h>

#define MAX_WORD 64

static int is_palindrome(const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len / 2; i++) {
        if (tolower(s[i]) != tolower(s[len - 1 - i]))
            return 0;
    }
    return 1;
}
