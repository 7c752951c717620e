// Every exported function runs its body through pv::guarded(), which turns any C++ exception into
// a status code and the thread's last-error message, so nothing escapes into C, R or Julia.
#pragma once

#include <new>
#include <string>

#include "engine/error.h"

namespace pv {

void set_last_error(const std::string& message);
void clear_last_error();

template <class Body>
pv_status guarded(const char* function, Body&& body) noexcept {
  try {
    body();
    return PV_OK;
  } catch (const Error& e) {
    set_last_error(std::string(function) + ": " + e.what());
    return e.status();
  } catch (const std::bad_alloc&) {
    set_last_error(std::string(function) + ": out of host memory");
    return PV_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_last_error(std::string(function) + ": internal error: " + e.what());
    return PV_ERR_INTERNAL;
  } catch (...) {
    set_last_error(std::string(function) + ": internal error (unknown exception)");
    return PV_ERR_INTERNAL;
  }
}

}  // namespace pv
