#include <memory>
#include <string>

namespace app {

class Logger {
public:
    explicit Logger(std::string name) : name_(std::move(name)) {}
    virtual ~Logger() = default;
    virtual void log(const std::string& msg) = 0;

protected:
    std::string name_;
};

std::unique_ptr<Logger> make_logger(const std::string& name);

}  // namespace app
