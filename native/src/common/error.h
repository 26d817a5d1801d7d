// Errors inside the library are thrown as lk::Error and turned into an lk_status at the C boundary.
#pragma once

#include <stdexcept>
#include <string>

#include "lookahead.h"

namespace lk {

class Error : public std::runtime_error {
public:
    Error(lk_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
    lk_status status() const { return status_; }

private:
    lk_status status_;
};

[[noreturn]] inline void fail(lk_status status, const std::string& message) { throw Error(status, message); }

inline void require(bool condition, const std::string& message) {
    if (!condition) fail(LK_ERR_INVALID_ARGUMENT, message);
}

// Stores the thread-local message returned by lk_last_error().
void set_last_error(const std::string& message);

}  // namespace lk
