template <typename T>
class Stack {
public:
    void push(const T& value) { data_.push_back(value); }

    T pop() {
        T top = data_.back();
        data_.pop_back();
        return top;
    }

    bool empty() const noexcept { return data_.empty(); }

private:
    std::vector<T> data_;
};
