#include <iostream>
#include <vector>
#include <algorithm>

int main() {
    std::vector<int> values{5, 3, 9, 1};
    std::sort(values.begin(), values.end());
    for (const auto& v : values) {
        std::cout << v << ' ';
    }
    std::cout << std::endl;
    return 0;
}
