// Shannon entropy of probability vectors, for Python through pybind11.
//
// entropy(p)       one vector (1-D array)            -> float
// entropy_rows(a)  each row of a 2-D array           -> 1-D float64 array, GIL released,
//                  rows split over `threads` threads (default: every core)
//
// Both read float32 or float64 arrays in place, whatever their strides (no copy), sum in double,
// take the natural log or any base, and treat 0 * log 0 as 0. Bad input raises ValueError naming
// the row and the index: empty input, negative, NaN or infinite values, and a total that is not 1
// within `tol` (unless normalize=True, which divides by the total instead).

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>  // std::optional<double> for base=None

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace py = pybind11;

namespace {

constexpr py::ssize_t kRowsPerThread = 4096;  // fewer rows than this per thread: not worth one

struct Options {
  double log_base_inverse;  // 1 / ln(base); 1 for nats
  bool normalize;
  double tol;
};

std::string where(std::optional<py::ssize_t> row, py::ssize_t index) {
  std::ostringstream text;
  if (row) text << "row " << *row << ", ";
  text << "index " << index;
  return text.str();
}

std::string prefix(std::optional<py::ssize_t> row) {
  return row ? "row " + std::to_string(*row) + ": " : std::string();
}

// One distribution of n values at `data`, `stride` elements apart.
template <typename T>
double distribution_entropy(const T* data, py::ssize_t n, py::ssize_t stride, const Options& opt,
                            std::optional<py::ssize_t> row) {
  if (n == 0) throw py::value_error(prefix(row) + "empty distribution");
  double total = 0.0;
  double sum_p_log_p = 0.0;
  for (py::ssize_t i = 0; i < n; ++i) {
    const double p = static_cast<double>(data[i * stride]);
    if (!std::isfinite(p)) {
      throw py::value_error(where(row, i) + ": " + (std::isnan(p) ? "NaN" : "infinite value"));
    }
    if (p < 0.0) {
      std::ostringstream text;
      text << where(row, i) << ": negative value " << p;
      throw py::value_error(text.str());
    }
    total += p;
    if (!opt.normalize && p > 0.0) sum_p_log_p += p * std::log(p);
  }
  if (opt.normalize) {
    if (total <= 0.0) throw py::value_error(prefix(row) + "all zeros: nothing to normalize");
    // A second pass over q = p / s: ln s - (sum p ln p) / s loses everything when s is tiny.
    double sum_q_log_q = 0.0;
    for (py::ssize_t i = 0; i < n; ++i) {
      const double q = static_cast<double>(data[i * stride]) / total;
      if (q > 0.0) sum_q_log_q += q * std::log(q);
    }
    const double entropy = -sum_q_log_q * opt.log_base_inverse;
    return entropy > 0.0 ? entropy : 0.0;
  }
  if (std::abs(total - 1.0) > opt.tol) {
    std::ostringstream text;
    text << prefix(row) << "sums to " << total << ", not 1 within tol=" << opt.tol
         << " (pass normalize=True to rescale)";
    throw py::value_error(text.str());
  }
  const double entropy = -sum_p_log_p * opt.log_base_inverse;
  return entropy > 0.0 ? entropy : 0.0;  // -0.0 and rounding below 0 for one-hot vectors
}

Options options(std::optional<double> base, bool normalize, double tol) {
  if (base && (!(*base > 0.0) || *base == 1.0 || !std::isfinite(*base))) {
    throw py::value_error("base must be positive, finite and not 1");
  }
  if (!(tol >= 0.0)) throw py::value_error("tol must be >= 0");
  return Options{base ? 1.0 / std::log(*base) : 1.0, normalize, tol};
}

template <typename T>
double vector_entropy(const py::array& p, const Options& opt) {
  const auto view = p.unchecked<T, 1>();
  const py::ssize_t stride = view.shape(0) > 1 ? p.strides(0) / py::ssize_t(sizeof(T)) : 1;
  if (p.strides(0) % py::ssize_t(sizeof(T)) != 0) throw py::value_error("unaligned strides");
  return distribution_entropy<T>(view.shape(0) ? &view(0) : nullptr, view.shape(0), stride, opt,
                                 std::nullopt);
}

// Rows [begin, end) into out; the first bad row's message goes to `error` (rows stop there).
template <typename T>
void rows_range(const T* base, py::ssize_t begin, py::ssize_t end, py::ssize_t cols,
                py::ssize_t row_stride, py::ssize_t col_stride, const Options& opt, double* out,
                std::string& error, py::ssize_t& error_row) {
  for (py::ssize_t r = begin; r < end; ++r) {
    try {
      out[r] = distribution_entropy<T>(base + r * row_stride, cols, col_stride, opt, r);
    } catch (const py::value_error& e) {
      error = e.what();
      error_row = r;
      return;
    }
  }
}

template <typename T>
py::array_t<double> rows_entropy(const py::array& a, const Options& opt, unsigned threads) {
  const auto view = a.unchecked<T, 2>();
  const py::ssize_t rows = view.shape(0), cols = view.shape(1);
  if (a.strides(0) % py::ssize_t(sizeof(T)) != 0 || a.strides(1) % py::ssize_t(sizeof(T)) != 0) {
    throw py::value_error("unaligned strides");
  }
  const py::ssize_t row_stride = a.strides(0) / py::ssize_t(sizeof(T));
  const py::ssize_t col_stride = a.strides(1) / py::ssize_t(sizeof(T));
  const T* base = (rows && cols) ? &view(0, 0) : nullptr;
  if (rows > 0 && cols == 0) throw py::value_error("row 0: empty distribution");
  py::array_t<double> out(rows);
  double* result = out.mutable_data();
  // Small batches stay on this thread: starting threads costs more than they would save.
  const py::ssize_t chunks =
      std::max<py::ssize_t>(1, std::min<py::ssize_t>(threads, rows / kRowsPerThread));
  std::vector<std::string> errors(chunks);
  std::vector<py::ssize_t> error_rows(chunks, -1);
  {
    py::gil_scoped_release release;  // pure C++ from here: other Python threads may run
    std::vector<std::thread> pool;
    const py::ssize_t per_chunk = (rows + chunks - 1) / chunks;
    for (py::ssize_t c = 0; c < chunks; ++c) {
      const py::ssize_t begin = c * per_chunk, end = std::min(rows, begin + per_chunk);
      auto work = [&, c, begin, end] {
        rows_range<T>(base, begin, end, cols, row_stride, col_stride, opt, result, errors[c],
                      error_rows[c]);
      };
      if (c + 1 == chunks) {
        work();  // the last chunk on this thread
      } else {
        pool.emplace_back(work);
      }
    }
    for (auto& thread : pool) thread.join();
  }
  for (py::ssize_t c = 0; c < chunks; ++c) {  // chunks are in row order: the first bad row
    if (error_rows[c] >= 0) throw py::value_error(errors[c]);
  }
  return out;
}

py::array float_array(const py::handle& values, int ndim) {
  py::array array = py::array::ensure(values);
  if (!array) throw py::type_error("expected a numpy array (or something numpy can make one of)");
  if (array.ndim() != ndim) {
    throw py::value_error("expected a " + std::to_string(ndim) + "-D array, got " +
                          std::to_string(array.ndim()) + "-D");
  }
  if (!array.dtype().is(py::dtype::of<float>()) && !array.dtype().is(py::dtype::of<double>())) {
    array = py::array_t<double, py::array::forcecast>::ensure(array);  // ints and others: a copy
  }
  return array;
}

double entropy(const py::handle& p, std::optional<double> base, bool normalize, double tol) {
  const Options opt = options(base, normalize, tol);
  const py::array array = float_array(p, 1);
  if (array.dtype().is(py::dtype::of<float>())) return vector_entropy<float>(array, opt);
  return vector_entropy<double>(array, opt);
}

py::array_t<double> entropy_rows(const py::handle& a, std::optional<double> base, bool normalize,
                                 double tol, std::optional<unsigned> threads) {
  const Options opt = options(base, normalize, tol);
  const py::array array = float_array(a, 2);
  const unsigned workers = threads ? *threads : std::max(1u, std::thread::hardware_concurrency());
  if (workers == 0) throw py::value_error("threads must be >= 1 (or None: every core)");
  if (array.dtype().is(py::dtype::of<float>())) return rows_entropy<float>(array, opt, workers);
  return rows_entropy<double>(array, opt, workers);
}

}  // namespace

PYBIND11_MODULE(_entropy, m) {
  m.doc() = "Shannon entropy of probability vectors (C++, zero-copy, GIL-free batches).";
  m.def("entropy", &entropy, py::arg("p"), py::kw_only(), py::arg("base") = py::none(),
        py::arg("normalize") = false, py::arg("tol") = 1e-6,
        "Entropy of one probability vector (1-D, float32 or float64, any stride).");
  m.def("entropy_rows", &entropy_rows, py::arg("a"), py::kw_only(), py::arg("base") = py::none(),
        py::arg("normalize") = false, py::arg("tol") = 1e-6, py::arg("threads") = py::none(),
        "Entropy of each row of a 2-D array, on `threads` threads (None: every core); "
        "releases the GIL while it computes.");
}
