#include <cstdio>

#include <omp.h>

#include "commands.hpp"
#include "qsdpa/qsdpa.hpp"

namespace qsdpa::tools {

void register_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Devices, formats and build options");
  cmd->callback([] {
    const BuildInfo b = build_info();
    std::printf("qsdpa %s (commit %s)\n", b.version.c_str(), b.commit.c_str());
    std::printf("devices:\n  cpu: %d threads, AVX-512 kernels %s\n", omp_get_max_threads(),
                b.avx512 ? (cpu_has_avx512() ? "compiled and used" : "compiled, CPU lacks them") : "not compiled");
    if (!b.cuda) {
      std::printf("  cuda: not compiled in this build (configure with -DQSDPA_CUDA=ON)\n");
    } else {
      const auto names = cuda_device_names();
      std::printf("  cuda: backend compiled, %zu device(s)\n", names.size());
      for (size_t i = 0; i < names.size(); ++i) std::printf("    %zu: %s\n", i, names[i].c_str());
    }
    std::printf("formats (bits per value at D=128):\n");
    for (const std::string& name : all_format_names()) {
      const Format f = parse_format(name);
      std::printf("  %-14s %6.3f\n", name.c_str(), bits_per_value(f, 128));
    }
  });
}

}  // namespace qsdpa::tools
