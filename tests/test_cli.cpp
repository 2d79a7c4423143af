// The command-line tool (SPEC §4), run as a subprocess: quantize/dequantize with meta.json, MLX-packed
// files, attention against the library, exit codes, npy validation, atomic writes, bench/eval JSON.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "npy.hpp"
#include "test_util.hpp"

namespace qsdpa {
namespace {

namespace fs = std::filesystem;

struct CliResult {
  int code;
  std::string out, err;
};

class Cli : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("qsdpa_cli_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
           std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string p(const std::string& name) const { return (dir / name).string(); }

  // The CLI built beside these tests, or QSDPA_CLI_PATH's (a binary moved to another machine with
  // them, as scripts/gpu-check.sh runs carry-build.sh's archives).
  static std::string cli_path() {
    const char* moved = std::getenv("QSDPA_CLI_PATH");
    return moved && *moved ? moved : QSDPA_CLI;
  }
  CliResult run(const std::string& args) const {
    const std::string out = p("stdout.txt"), err = p("stderr.txt");
    const std::string cmd = cli_path() + " " + args + " >" + out + " 2>" + err;
    const int status = std::system(cmd.c_str());
    auto slurp = [](const std::string& f) {
      std::ifstream in(f);
      return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    };
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
  }
  void save_f32(const std::string& name, const std::vector<float>& v, std::vector<int64_t> shape) const {
    npy::save(p(name), npy::from_f32(v, std::move(shape)));
  }
  std::vector<float> load_f32(const std::string& name) const { return npy::to_f32(npy::load(p(name)), name); }
};

TEST_F(Cli, InfoListsFormatsAndBuild) {
  const CliResult r = run("info");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("affine4-g32"), std::string::npos);
  EXPECT_NE(r.out.find("commit"), std::string::npos);
  EXPECT_NE(r.out.find("cuda"), std::string::npos);
}

TEST_F(Cli, UsageErrorsExit2) {
  EXPECT_EQ(run("").code, 2);
  EXPECT_EQ(run("quantize --format").code, 2);
  EXPECT_EQ(run("no-such-command").code, 2);
}

TEST_F(Cli, QuantizeDequantizeRoundTripWithMeta) {
  const auto x = test::random_normal(4 * 128, 1);
  save_f32("x.npy", x, {2, 2, 128});
  for (const char* f : {"affine4", "affine3-g32", "mxfp4", "mxfp8", "nvfp4", "turbo3", "fp8", "f16"}) {
    CliResult r = run(std::string("quantize --format ") + f + " --seed 7 " + p("x.npy") + " " + p("q"));
    ASSERT_EQ(r.code, 0) << f << ": " << r.err;
    const auto meta = nlohmann::json::parse(std::ifstream(p("q.meta.json")));
    EXPECT_EQ(meta["format"], f);
    EXPECT_EQ(meta["dim"], 128);
    EXPECT_EQ(meta["seed"], 7);
    const npy::Array codes = npy::load(p("q.codes.npy"));
    EXPECT_EQ(codes.descr, "<u4");
    EXPECT_EQ(codes.shape, (std::vector<int64_t>{2, 2, 128 * parse_format(f).bits / 32}));
    r = run("dequantize " + p("q") + " " + p("back.npy"));
    ASSERT_EQ(r.code, 0) << f << ": " << r.err;
    // Same values as the library's quantize/dequantize.
    Format fm = parse_format(f);
    fm.seed = 7;
    const QuantizedTensor q = quantize(x.data(), {2, 2, 128}, fm);
    std::vector<float> want(x.size());
    dequantize(q, want.data());
    EXPECT_EQ(load_f32("back.npy"), want) << f;
    // Flags that contradict meta.json are an error.
    r = run("dequantize --format affine8 " + p("q") + " " + p("back.npy"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("contradicts"), std::string::npos) << r.err;
  }
  // No temporary files left behind.
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

TEST_F(Cli, ScaleDtypesAndBf16ScalesAsU2) {
  const auto x = test::random_normal(2 * 64, 2);
  save_f32("x.npy", x, {2, 64});
  ASSERT_EQ(run("quantize --format affine4 --scale-dtype bf16 " + p("x.npy") + " " + p("q")).code, 0);
  EXPECT_EQ(npy::load(p("q.scales.npy")).descr, "<u2");
  EXPECT_EQ(npy::load(p("q.biases.npy")).descr, "<u2");
  ASSERT_EQ(run("dequantize " + p("q") + " " + p("b.npy")).code, 0);
  fs::remove(p("q.meta.json"));  // without meta: the flags say the format; dtypes come from the files
  ASSERT_EQ(run("dequantize --format affine4 " + p("q") + " " + p("c.npy")).code, 0);
  EXPECT_EQ(load_f32("b.npy"), load_f32("c.npy"));
  ASSERT_EQ(run("quantize --format affine4 --scale-dtype f32 " + p("x.npy") + " " + p("r")).code, 0);
  EXPECT_EQ(npy::load(p("r.scales.npy")).descr, "<f4");
  const CliResult bad = run("quantize --format mxfp4 --scale-dtype f32 " + p("x.npy") + " " + p("s"));
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("--scale-dtype"), std::string::npos);
}

TEST_F(Cli, DequantizesMlxPackedFilesWithoutMeta) {
  // An affine4-g32 row with f32 scales as MLX writes them: codes uint32, scales/biases float32.
  const auto x = test::random_normal(64, 3);
  Format f = parse_format("affine4-g32");
  f.scale_dtype = ScaleDType::f32;
  const QuantizedTensor q = quantize(x.data(), {1, 64}, f);
  npy::save(p("m.codes.npy"), npy::from_bytes("<u4", {1, 8}, q.codes.data(), q.codes.size()));
  npy::save(p("m.scales.npy"), npy::from_bytes("<f4", {1, 2}, q.scales.data(), q.scales.size()));
  npy::save(p("m.biases.npy"), npy::from_bytes("<f4", {1, 2}, q.biases.data(), q.biases.size()));
  const CliResult r = run("dequantize --format affine4-g32 " + p("m") + " " + p("o.npy"));
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<float> want(64);
  dequantize(q, want.data());
  EXPECT_EQ(load_f32("o.npy"), want);
  EXPECT_EQ(run("dequantize " + p("m") + " " + p("o.npy")).code, 1);  // no meta, no --format
}

TEST_F(Cli, Nvfp4TinyBlocksWarnButSucceed) {
  std::vector<float> x(32, 1e-4f);
  save_f32("x.npy", x, {1, 32});
  const CliResult r = run("quantize --format nvfp4 " + p("x.npy") + " " + p("q"));
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.err.find("warning"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("decode to 0"), std::string::npos) << r.err;
}

TEST_F(Cli, CorruptAndTruncatedNpyGiveClearErrors) {
  const auto x = test::random_normal(64, 4);
  save_f32("x.npy", x, {1, 64});
  std::string bytes;
  {
    std::ifstream in(p("x.npy"), std::ios::binary);
    bytes.assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  auto write = [&](const std::string& name, const std::string& b) { std::ofstream(p(name), std::ios::binary) << b; };
  write("trunc.npy", bytes.substr(0, bytes.size() - 10));
  write("magic.npy", "XXNUMPY" + bytes.substr(7));
  write("short.npy", bytes.substr(0, 8));
  std::string fortran = bytes;
  fortran.replace(fortran.find("False"), 5, "True ");
  write("fortran.npy", fortran);
  std::string be = bytes;
  be.replace(be.find("<f4"), 3, ">f4");
  write("be.npy", be);
  const std::pair<const char*, const char*> cases[] = {{"trunc.npy", "truncated data"}, {"magic.npy", "bad magic"},
                                                       {"short.npy", "bad magic"},      {"fortran.npy", "Fortran"},
                                                       {"be.npy", "unsupported dtype"}, {"missing.npy", "cannot open"}};
  for (const auto& [file, msg] : cases) {
    const CliResult r = run("quantize --format affine4 " + p(file) + " " + p("q"));
    EXPECT_EQ(r.code, 1) << file;
    EXPECT_NE(r.err.find(msg), std::string::npos) << file << ": " << r.err;
    EXPECT_FALSE(fs::exists(p("q.codes.npy"))) << file;
  }
}

TEST_F(Cli, FailedWriteLeavesNoFileUnderTheRealName) {
  const auto x = test::random_normal(64, 5);
  save_f32("x.npy", x, {1, 64});
  const CliResult r = run("quantize --format affine4 " + p("x.npy") + " " + p("no_such_dir/q"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot open"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(p("no_such_dir")));
}

TEST_F(Cli, AttentionMatchesTheLibrary) {
  const int64_t B = 1, Hq = 4, Hkv = 2, Lq = 3, N = 50, D = 64;
  const auto q = test::random_normal(size_t(B * Hq * Lq * D), 6), k = test::random_normal(size_t(B * Hkv * N * D), 7),
             v = test::random_normal(size_t(B * Hkv * N * D), 8), sinks = test::random_normal(size_t(Hq), 9);
  save_f32("q.npy", q, {B, Hq, Lq, D});
  save_f32("k.npy", k, {B, Hkv, N, D});
  save_f32("v.npy", v, {B, Hkv, N, D});
  save_f32("s.npy", sinks, {Hq});
  const CliResult r = run("attention --q " + p("q.npy") + " --k " + p("k.npy") + " --v " + p("v.npy") +
                    " --k-format mxfp8 --v-format turbo3 --mask causal --window 20 --sinks " + p("s.npy") + " --lse " +
                    p("lse.npy") + " --device cpu --out " + p("o.npy"));
  ASSERT_EQ(r.code, 0) << r.err;
  const QuantizedTensor kq = quantize(k.data(), {B, Hkv, N, D}, parse_format("mxfp8")),
                        vq = quantize(v.data(), {B, Hkv, N, D}, parse_format("turbo3"));
  std::vector<float> qv = q, want(q.size()), lse(size_t(B * Hq * Lq));
  AttentionArgs a;
  a.q = contiguous_view(qv.data(), DType::f32, B, Hq, Lq, D);
  a.out = contiguous_view(want.data(), DType::f32, B, Hq, Lq, D);
  a.k = kq.view();
  a.v = vq.view();
  a.scale = 0.125f;
  a.causal = true;
  a.window = 20;
  a.sinks = sinks.data();
  a.lse = lse.data();
  attention(a);
  EXPECT_EQ(load_f32("o.npy"), want);
  EXPECT_EQ(load_f32("lse.npy"), lse);
  // A bool mask of the wrong shape is an error that names the mask.
  std::vector<uint8_t> m(size_t(7 * N), 1);
  npy::save(p("m.npy"), npy::from_bytes("|b1", {7, N}, m.data(), m.size()));
  const CliResult bad = run("attention --q " + p("q.npy") + " --k " + p("k.npy") + " --v " + p("v.npy") + " --mask " +
                      p("m.npy") + " --out " + p("o2.npy"));
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("mask"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(p("o2.npy")));
}

// `--device cuda` runs the same call on the GPU (arrays copied there and back) and matches the CPU
// output to SPEC §2's tolerance; without a backend or a device it is a clear error, never the CPU.
TEST_F(Cli, AttentionOnCudaMatchesTheCpuOrSaysWhyNot) {
  const int64_t B = 1, Hq = 8, Hkv = 2, Lq = 1, N = 300, D = 128;
  save_f32("q.npy", test::random_normal(size_t(B * Hq * Lq * D), 16), {B, Hq, Lq, D});
  save_f32("k.npy", test::random_normal(size_t(B * Hkv * N * D), 17), {B, Hkv, N, D});
  save_f32("v.npy", test::random_normal(size_t(B * Hkv * N * D), 18), {B, Hkv, N, D});
  const std::string args = "attention --q " + p("q.npy") + " --k " + p("k.npy") + " --v " + p("v.npy") +
                           " --k-format mxfp4 --v-format mxfp4 --lse " + p("lse.npy") + " --out ";
  const CliResult cpu = run(args + p("cpu.npy") + " --device cpu");
  ASSERT_EQ(cpu.code, 0) << cpu.err;
  const CliResult gpu = run(args + p("gpu.npy") + " --device cuda");
  if (!build_info().cuda || cuda_device_names().empty()) {
    EXPECT_EQ(gpu.code, 1);
    EXPECT_NE(gpu.err.find("--device: cuda requested"), std::string::npos) << gpu.err;
    EXPECT_FALSE(fs::exists(p("gpu.npy")));
    return;
  }
  ASSERT_EQ(gpu.code, 0) << gpu.err;
  const auto want = load_f32("cpu.npy"), got = load_f32("gpu.npy");
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) num += (got[i] - want[i]) * (got[i] - want[i]), den += want[i] * want[i];
  EXPECT_LE(std::sqrt(num / den), 1e-3);
}

TEST_F(Cli, BenchWritesTheJsonFields) {
  const CliResult r = run("bench --device cpu --formats f16,affine4,mxfp8:turbo3 --context 300 --heads 4:2 --dim 64 "
                    "--min-seconds 0.001 --json " + p("b.json"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(std::ifstream(p("b.json")));
  for (const char* key : {"device", "device_name", "peak_gbps", "peak_kind", "commit", "date", "threads", "rows"})
    EXPECT_TRUE(j.contains(key)) << key;
  ASSERT_EQ(j["rows"].size(), 3u);
  for (const auto& row : j["rows"])
    for (const char* key : {"k_format", "v_format", "batch", "hq", "hkv", "dim", "lq", "context", "time_us", "bytes", "gbps",
                            "f16_time_us", "unfused_time_us", "speedup_vs_f16", "speedup_vs_unfused", "append_us"})
      EXPECT_TRUE(row.contains(key)) << key;
  EXPECT_EQ(j["rows"][2]["v_format"], "turbo3");
  if (!build_info().cuda) EXPECT_EQ(run("bench --device cuda --context 300").code, 1);
}

TEST_F(Cli, EvalWritesTheJsonFields) {
  const CliResult r = run("eval --formats affine4,mxfp8:turbo3 --context 128 --json " + p("e.json"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(std::ifstream(p("e.json")));
  ASSERT_EQ(j["rows"].size(), 4u);  // 2 formats x 2 data kinds
  for (const auto& row : j["rows"]) {
    for (const char* key : {"k_format", "v_format", "data", "bits_per_value", "compression", "rel_l2_error"})
      EXPECT_TRUE(row.contains(key)) << key;
    EXPECT_GT(row["rel_l2_error"].get<double>(), 0.0);
    EXPECT_LT(row["rel_l2_error"].get<double>(), 1.0);
  }
}

}  // namespace
}  // namespace qsdpa
