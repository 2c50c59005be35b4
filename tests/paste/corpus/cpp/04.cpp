#include <map>
#include <string>
#include <iostream>
using namespace std;

int main() {
    map<string, int> ages;
    ages["alice"] = 31;
    ages["bob"] = 27;
    for (auto it = ages.begin(); it != ages.end(); ++it) {
        cout << it->first << " is " << it->second << endl;
    }
    return 0;
}
