#include <iostream>
#include <string>

class Greeter {
public:
    explicit Greeter(std::string name) : name_(name) {}
    void greet() const { std::cout << "Hello, " << name_ << "!\n"; }

private:
    std::string name_;
};

int main() {
    Greeter("world").greet();
}
