#include "io/svg.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "engine/error.h"

namespace pv::io::svg {

namespace {

// Anchor colours sampled evenly along each map; values between anchors are interpolated in RGB.
// Viridis: matplotlib's perceptually uniform map at 0, 1/8, ..., 1.
constexpr uint8_t kViridis[][3] = {{0x44, 0x01, 0x54}, {0x47, 0x2c, 0x7a}, {0x3b, 0x51, 0x8b},
                                   {0x2c, 0x71, 0x8e}, {0x21, 0x90, 0x8d}, {0x27, 0xad, 0x81},
                                   {0x5c, 0xc8, 0x63}, {0xaa, 0xdc, 0x32}, {0xfd, 0xe7, 0x25}};
// Blue-white-red (ColorBrewer RdBu, reversed so that high is red).
constexpr uint8_t kDiverging[][3] = {{0x21, 0x66, 0xac}, {0x43, 0x93, 0xc3}, {0x92, 0xc5, 0xde},
                                     {0xd1, 0xe5, 0xf0}, {0xf7, 0xf7, 0xf7}, {0xfd, 0xdb, 0xc7},
                                     {0xf4, 0xa5, 0x82}, {0xd6, 0x60, 0x4d}, {0xb2, 0x18, 0x2b}};
constexpr int kAnchors = 9;

// Distinct hues first, then their lighter partners (scanpy's 20-colour default order).
constexpr uint8_t kCategories[][3] = {
    {0x1f, 0x77, 0xb4}, {0xff, 0x7f, 0x0e}, {0x27, 0x9e, 0x68}, {0xd6, 0x27, 0x28},
    {0xaa, 0x40, 0xfc}, {0x8c, 0x56, 0x4b}, {0xe3, 0x77, 0xc2}, {0xb5, 0xbd, 0x61},
    {0x17, 0xbe, 0xcf}, {0xae, 0xc7, 0xe8}, {0xff, 0xbb, 0x78}, {0x98, 0xdf, 0x8a},
    {0xff, 0x98, 0x96}, {0xc5, 0xb0, 0xd5}, {0xc4, 0x9c, 0x94}, {0xf7, 0xb6, 0xd2},
    {0xdb, 0xdb, 0x8d}, {0x9e, 0xda, 0xe5}, {0xad, 0x49, 0x4a}, {0x8c, 0x6d, 0x31}};

const char* anchor_name(Anchor anchor) {
  switch (anchor) {
    case Anchor::kMiddle: return "middle";
    case Anchor::kEnd: return "end";
    default: return "start";
  }
}

bool finite(double v) { return std::isfinite(v); }

}  // namespace

std::string Color::hex() const {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "#%02x%02x%02x", r, g, b);
  return buffer;
}

Color colormap(Colormap map, double t) {
  if (!finite(t)) return Color{0xbb, 0xbb, 0xbb};
  const auto& table = map == Colormap::kViridis ? kViridis : kDiverging;
  t = std::min(1.0, std::max(0.0, t)) * (kAnchors - 1);
  const int i = std::min(kAnchors - 2, static_cast<int>(std::floor(t)));
  const double f = t - i;
  auto mix = [&](int channel) {
    const double v = table[i][channel] + f * (table[i + 1][channel] - table[i][channel]);
    return static_cast<uint8_t>(std::lround(v));
  };
  return Color{mix(0), mix(1), mix(2)};
}

Color category_color(size_t index) {
  const auto& c = kCategories[index % (sizeof kCategories / sizeof kCategories[0])];
  return Color{c[0], c[1], c[2]};
}

std::string escape_xml(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters other than tab/newline are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string number(double value, int decimals) {
  if (!finite(value)) return "0";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  std::string text = buffer;
  if (text.find('.') != std::string::npos) {
    while (!text.empty() && text.back() == '0') text.pop_back();
    if (!text.empty() && text.back() == '.') text.pop_back();
  }
  if (text == "-0") text = "0";
  return text;
}

std::string significant(double value, int digits) {
  if (!finite(value)) return "0";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*g", std::max(1, digits), value);
  std::string text = buffer;
  const size_t e = text.find('e');
  if (e == std::string::npos) return text;
  // "1.2e+06" -> "1.2e6", "3e-05" -> "3e-5".
  std::string exponent = text.substr(e + 1);
  const bool negative = exponent[0] == '-';
  exponent = exponent.substr(exponent[0] == '-' || exponent[0] == '+' ? 1 : 0);
  while (exponent.size() > 1 && exponent[0] == '0') exponent.erase(0, 1);
  return text.substr(0, e) + "e" + (negative ? "-" : "") + exponent;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!finite(lo) || !finite(hi) || hi <= lo || target < 1) return ticks;
  const double raw = (hi - lo) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double normalized = raw / magnitude;
  const double step = (normalized < 1.5 ? 1 : normalized < 3 ? 2 : normalized < 7 ? 5 : 10) * magnitude;
  const double first = std::ceil(lo / step - 1e-9);
  for (double k = first; k * step <= hi + 1e-9 * step; k += 1) {
    const double v = k * step;
    ticks.push_back(std::fabs(v) < 1e-9 * step ? 0.0 : v);
    if (ticks.size() > 100) break;
  }
  return ticks;
}

std::string tick_label(double value, double step) {
  if (value == 0) return "0";
  step = std::fabs(step) > 0 ? std::fabs(step) : std::fabs(value);
  const double magnitude = std::max(std::fabs(value), step);
  if (magnitude >= 1e5 || step < 1e-3) {
    const int exponent = static_cast<int>(std::floor(std::log10(std::fabs(value))));
    const int step_exponent = static_cast<int>(std::floor(std::log10(step) + 1e-9));
    const int digits = std::min(6, std::max(0, exponent - step_exponent));
    const double mantissa = value / std::pow(10.0, exponent);
    return number(mantissa, digits) + "e" + std::to_string(exponent);
  }
  const int decimals = std::min(6, std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9))));
  return number(value, decimals);
}

Range finite_range(const std::vector<double>& values, double pad_fraction) {
  double lo = 0, hi = 0;
  bool any = false;
  for (double v : values) {
    if (!finite(v)) continue;
    if (!any || v < lo) lo = v;
    if (!any || v > hi) hi = v;
    any = true;
  }
  if (!any) return Range{0, 1};
  if (hi <= lo) {
    const double half = lo == 0 ? 0.5 : std::fabs(lo) * 0.05;
    return Range{lo - half, hi + half};
  }
  const double pad = (hi - lo) * pad_fraction;
  return Range{lo - pad, hi + pad};
}

// ---- Canvas --------------------------------------------------------------------------------

Canvas::Canvas(double width, double height) : width_(width), height_(height) {
  rect(0, 0, width, height, "#ffffff");
}

void Canvas::text(double x, double y, const std::string& content, double size, Anchor anchor,
                  double rotate_degrees, bool bold) {
  body_ += "<text x=\"" + number(x) + "\" y=\"" + number(y) + "\" font-size=\"" + number(size) +
           "\" text-anchor=\"" + anchor_name(anchor) + "\"";
  if (bold) body_ += " font-weight=\"bold\"";
  if (rotate_degrees != 0) {
    body_ += " transform=\"rotate(" + number(rotate_degrees) + " " + number(x) + " " + number(y) + ")\"";
  }
  body_ += ">" + escape_xml(content) + "</text>\n";
}

void Canvas::rect(double x, double y, double w, double h, const std::string& fill,
                  const std::string& stroke, double stroke_width) {
  body_ += "<rect x=\"" + number(x) + "\" y=\"" + number(y) + "\" width=\"" + number(w) +
           "\" height=\"" + number(h) + "\" fill=\"" + escape_xml(fill) + "\"";
  if (stroke != "none") {
    body_ += " stroke=\"" + escape_xml(stroke) + "\" stroke-width=\"" + number(stroke_width) + "\"";
  }
  body_ += "/>\n";
}

void Canvas::line(double x0, double y0, double x1, double y1, const std::string& stroke,
                  double stroke_width) {
  if (!finite(x0) || !finite(y0) || !finite(x1) || !finite(y1)) return;
  body_ += "<line x1=\"" + number(x0) + "\" y1=\"" + number(y0) + "\" x2=\"" + number(x1) +
           "\" y2=\"" + number(y1) + "\" stroke=\"" + escape_xml(stroke) + "\" stroke-width=\"" +
           number(stroke_width) + "\"/>\n";
}

void Canvas::circle(double x, double y, double radius, const Color& fill, double opacity) {
  if (!finite(x) || !finite(y)) return;
  body_ += "<circle cx=\"" + number(x) + "\" cy=\"" + number(y) + "\" r=\"" + number(radius) +
           "\" fill=\"" + fill.hex() + "\"";
  if (opacity < 1) body_ += " fill-opacity=\"" + number(opacity) + "\"";
  body_ += "/>\n";
}

void Canvas::arrow(double x0, double y0, double x1, double y1, const std::string& color,
                   double stroke_width, double head_length) {
  if (!finite(x0) || !finite(y0) || !finite(x1) || !finite(y1)) return;
  const double dx = x1 - x0, dy = y1 - y0;
  const double length = std::sqrt(dx * dx + dy * dy);
  if (length < 1e-6) return;
  const double head = std::min(head_length, 0.6 * length);
  const double ux = dx / length, uy = dy / length;
  const double bx = x1 - ux * head, by = y1 - uy * head;  // base of the head
  const double half = 0.45 * head;
  const std::string c = escape_xml(color);
  body_ += "<path d=\"M" + number(x0) + " " + number(y0) + "L" + number(bx) + " " + number(by) +
           "M" + number(bx - uy * half) + " " + number(by + ux * half) + "L" + number(x1) + " " +
           number(y1) + "L" + number(bx + uy * half) + " " + number(by - ux * half) + "Z\" stroke=\"" +
           c + "\" stroke-width=\"" + number(stroke_width) + "\" fill=\"" + c + "\"/>\n";
}

void Canvas::polyline(const std::vector<double>& xs, const std::vector<double>& ys,
                      const std::string& stroke, double stroke_width) {
  std::string points;
  int count = 0;
  auto flush = [&]() {
    if (count >= 2) {
      body_ += "<polyline points=\"" + points + "\" fill=\"none\" stroke=\"" + escape_xml(stroke) +
               "\" stroke-width=\"" + number(stroke_width) + "\" stroke-linejoin=\"round\"/>\n";
    }
    points.clear();
    count = 0;
  };
  const size_t n = std::min(xs.size(), ys.size());
  for (size_t i = 0; i < n; ++i) {
    if (!finite(xs[i]) || !finite(ys[i])) {
      flush();
      continue;
    }
    if (count) points += ' ';
    points += number(xs[i]) + "," + number(ys[i]);
    ++count;
  }
  flush();
}

void Canvas::vertical_gradient(double x, double y, double w, double h, Colormap map) {
  const std::string id = "gradient" + std::to_string(next_id_++);
  defs_ += "<linearGradient id=\"" + id + "\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\n";
  constexpr int kStops = 17;
  for (int i = 0; i < kStops; ++i) {
    const double t = static_cast<double>(i) / (kStops - 1);
    defs_ += "<stop offset=\"" + number(t, 4) + "\" stop-color=\"" + colormap(map, t).hex() + "\"/>\n";
  }
  defs_ += "</linearGradient>\n";
  rect(x, y, w, h, "url(#" + id + ")", "#444444", 0.5);
}

void Canvas::begin_clip(double x, double y, double w, double h) {
  const std::string id = "clip" + std::to_string(next_id_++);
  defs_ += "<clipPath id=\"" + id + "\"><rect x=\"" + number(x) + "\" y=\"" + number(y) +
           "\" width=\"" + number(w) + "\" height=\"" + number(h) + "\"/></clipPath>\n";
  body_ += "<g clip-path=\"url(#" + id + ")\">\n";
}

void Canvas::end_group() { body_ += "</g>\n"; }

std::string Canvas::str() const {
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + number(width_) + "\" height=\"" +
         number(height_) + "\" viewBox=\"0 0 " + number(width_) + " " + number(height_) +
         "\" font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\">\n";
  if (!defs_.empty()) out += "<defs>\n" + defs_ + "</defs>\n";
  out += body_;
  out += "</svg>\n";
  return out;
}

void Canvas::save(const std::string& path) const {
  const std::string temporary = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) fail(PV_ERR_IO, path + ": cannot create the file");
    out << str();
    out.close();
    if (!out) {
      std::remove(temporary.c_str());
      fail(PV_ERR_IO, path + ": writing failed");
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    fail(PV_ERR_IO, path + ": cannot rename the finished file into place");
  }
}

// ---- Panel ---------------------------------------------------------------------------------

Panel::Panel(Canvas& canvas, double x, double y, double w, double h, Range x_range, Range y_range,
             PanelStyle style)
    : canvas_(canvas), x_(x), y_(y), w_(w), h_(h), xr_(x_range), yr_(y_range) {
  left_ = x + style.margin_left;
  top_ = y + style.margin_top;
  width_ = std::max(10.0, w - style.margin_left - style.margin_right - style.key_width);
  height_ = std::max(10.0, h - style.margin_top - style.margin_bottom);
  if (!(xr_.hi > xr_.lo)) xr_ = Range{xr_.lo - 0.5, xr_.lo + 0.5};
  if (!(yr_.hi > yr_.lo)) yr_ = Range{yr_.lo - 0.5, yr_.lo + 0.5};
}

double Panel::px(double x) const { return left_ + (x - xr_.lo) / (xr_.hi - xr_.lo) * width_; }
double Panel::py(double y) const { return top_ + height_ - (y - yr_.lo) / (yr_.hi - yr_.lo) * height_; }
double Panel::x_scale() const { return width_ / (xr_.hi - xr_.lo); }
double Panel::y_scale() const { return height_ / (yr_.hi - yr_.lo); }

void Panel::titles(const std::string& title, const std::string& x_label, const std::string& y_label,
                   const std::string& subtitle) {
  const double centre = left_ + width_ / 2;
  if (subtitle.empty()) {
    canvas_.text(centre, top_ - 12, title, 14, Anchor::kMiddle, 0, true);
  } else {
    canvas_.text(centre, top_ - 22, title, 14, Anchor::kMiddle, 0, true);
    canvas_.text(centre, top_ - 7, subtitle, 10, Anchor::kMiddle);
  }
  canvas_.text(centre, top_ + height_ + 38, x_label, 12, Anchor::kMiddle);
  const double label_x = x_ + 16, label_y = top_ + height_ / 2;
  canvas_.text(label_x, label_y, y_label, 12, Anchor::kMiddle, -90);
}

void Panel::axes(const std::string& title, const std::string& x_label, const std::string& y_label,
                 const std::string& subtitle) {
  const std::vector<double> x_ticks = nice_ticks(xr_.lo, xr_.hi, 5);
  const std::vector<double> y_ticks = nice_ticks(yr_.lo, yr_.hi, 5);
  const double x_step = x_ticks.size() > 1 ? x_ticks[1] - x_ticks[0] : (xr_.hi - xr_.lo);
  const double y_step = y_ticks.size() > 1 ? y_ticks[1] - y_ticks[0] : (yr_.hi - yr_.lo);
  const double bottom = top_ + height_;
  for (double t : x_ticks) {
    const double x = px(t);
    canvas_.line(x, top_, x, bottom, "#eeeeee", 0.8);
    canvas_.line(x, bottom, x, bottom + 5, "#333333", 1);
    canvas_.text(x, bottom + 17, tick_label(t, x_step), 10, Anchor::kMiddle);
  }
  for (double t : y_ticks) {
    const double y = py(t);
    canvas_.line(left_, y, left_ + width_, y, "#eeeeee", 0.8);
    canvas_.line(left_ - 5, y, left_, y, "#333333", 1);
    canvas_.text(left_ - 8, y + 3.5, tick_label(t, y_step), 10, Anchor::kEnd);
  }
  canvas_.rect(left_, top_, width_, height_, "none", "#333333", 1);
  titles(title, x_label, y_label, subtitle);
}

void Panel::frame(const std::string& title, const std::string& x_label, const std::string& y_label,
                  const std::string& subtitle) {
  canvas_.rect(left_, top_, width_, height_, "none", "#333333", 1);
  titles(title, x_label, y_label, subtitle);
}

void Panel::scatter(const std::vector<double>& xs, const std::vector<double>& ys,
                    const std::vector<Color>& colors, double radius, double opacity) {
  const size_t n = std::min(xs.size(), ys.size());
  canvas_.begin_clip(left_, top_, width_, height_);
  for (size_t i = 0; i < n; ++i) {
    canvas_.circle(px(xs[i]), py(ys[i]), radius, i < colors.size() ? colors[i] : Color{0x77, 0x77, 0x77},
                   opacity);
  }
  canvas_.end_group();
}

void Panel::arrows(const std::vector<double>& xs, const std::vector<double>& ys,
                   const std::vector<double>& dxs, const std::vector<double>& dys,
                   const std::string& color, double stroke_width) {
  const size_t n = std::min(std::min(xs.size(), ys.size()), std::min(dxs.size(), dys.size()));
  canvas_.begin_clip(left_, top_, width_, height_);
  for (size_t i = 0; i < n; ++i) {
    canvas_.arrow(px(xs[i]), py(ys[i]), px(xs[i] + dxs[i]), py(ys[i] + dys[i]), color, stroke_width,
                  4 * stroke_width / 0.7);
  }
  canvas_.end_group();
}

void Panel::polyline(const std::vector<double>& xs, const std::vector<double>& ys,
                     const std::string& color, double stroke_width) {
  std::vector<double> cx(xs.size()), cy(ys.size());
  for (size_t i = 0; i < xs.size(); ++i) cx[i] = px(xs[i]);
  for (size_t i = 0; i < ys.size(); ++i) cy[i] = py(ys[i]);
  canvas_.begin_clip(left_, top_, width_, height_);
  canvas_.polyline(cx, cy, color, stroke_width);
  canvas_.end_group();
}

void Panel::legend(const std::string& title, const std::vector<std::string>& labels,
                   const std::vector<Color>& colors, size_t line_entries) {
  const double x = left_ + width_ + 14;
  double y = top_ + 4;
  if (!title.empty()) {
    canvas_.text(x, y + 8, title, 11, Anchor::kStart, 0, true);
    y += 18;
  }
  // Long legends shrink their rows to fit the plot's height.
  const double row = std::max(9.0, std::min(16.0, (height_ - (y - top_)) / std::max<size_t>(1, labels.size())));
  for (size_t i = 0; i < labels.size(); ++i) {
    const Color c = i < colors.size() ? colors[i] : category_color(i);
    if (i < line_entries) {
      canvas_.line(x, y + row / 2, x + 10, y + row / 2, c.hex(), 2);
    } else {
      canvas_.circle(x + 5, y + row / 2, std::min(5.0, row / 2 - 1), c);
    }
    canvas_.text(x + 14, y + row / 2 + 3.5, labels[i], std::min(11.0, row - 1));
    y += row;
  }
}

void Panel::colorbar(const std::string& label, Range range, Colormap map) {
  const double x = left_ + width_ + 16, bar_w = 14;
  const double y = top_ + 10, bar_h = std::max(20.0, height_ - 20);
  canvas_.vertical_gradient(x, y, bar_w, bar_h, map);
  const std::vector<double> ticks = nice_ticks(range.lo, range.hi, 5);
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : range.hi - range.lo;
  for (double t : ticks) {
    const double ty = y + bar_h - (t - range.lo) / (range.hi - range.lo) * bar_h;
    canvas_.line(x + bar_w, ty, x + bar_w + 4, ty, "#333333", 1);
    canvas_.text(x + bar_w + 6, ty + 3.5, tick_label(t, step), 10);
  }
  // The label runs along the bar, right of the tick labels.
  canvas_.text(x + bar_w + 52, y + bar_h / 2, label, 11, Anchor::kMiddle, -90);
}

}  // namespace pv::io::svg
