// One function per subcommand: each registers its options on the app and its callback.
#pragma once

#include <CLI/CLI.hpp>

namespace qsdpa::tools {

void register_info(CLI::App& app);
void register_quantize(CLI::App& app);
void register_dequantize(CLI::App& app);
void register_attention(CLI::App& app);
void register_bench(CLI::App& app);
void register_eval(CLI::App& app);

}  // namespace qsdpa::tools
