// LibTorch's c10 logging defines glog-style CHECK, CHECK_EQ, ... macros that
// would silently replace doctest's (assertions then abort instead of being
// counted). Include torch first, drop its macros, then doctest.
#pragma once
#include <torch/torch.h>

#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LT
#undef CHECK_LE
#undef CHECK_GT
#undef CHECK_GE
#undef CHECK_FALSE
#undef CHECK_MESSAGE
#undef REQUIRE
#undef REQUIRE_EQ
#undef WARN
#include <doctest/doctest.h>
