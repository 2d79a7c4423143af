// The qsdpa command-line tool (SPEC §4). Invalid input exits 1 with the qsdpa::Error message; usage
// errors exit 2.
#include <cstdio>

#include "commands.hpp"
#include "qsdpa/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"qsdpa: fused attention over quantized KV caches"};
  app.require_subcommand(1);
  qsdpa::tools::register_info(app);
  qsdpa::tools::register_quantize(app);
  qsdpa::tools::register_dequantize(app);
  qsdpa::tools::register_attention(app);
  qsdpa::tools::register_bench(app);
  qsdpa::tools::register_eval(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  } catch (const qsdpa::Error& e) {
    std::fprintf(stderr, "qsdpa: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qsdpa: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
