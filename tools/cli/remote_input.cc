// http(s):// inputs: libcurl downloads to "<name>.part" with a size cap and Range resume, then a
// rename; RemoteSize asks for the length only. URLs appear in messages only redacted.
#include "remote_input.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>

#include "roilens/outputs/journal.h"

namespace roilens::cli {
namespace {

namespace fs = std::filesystem;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;

/// What the last response's header block said; a redirect's block is replaced by the next one's.
struct ResponseHead {
  long status = 0;
  std::int64_t content_length = -1;
  std::int64_t range_start = -1;  ///< Content-Range: bytes START-END/TOTAL
  std::int64_t range_total = -1;  ///< also from "bytes */TOTAL" (a 416's answer)
};

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::size_t OnHeader(char* data, std::size_t size, std::size_t count, void* user) {
  auto* head = static_cast<ResponseHead*>(user);
  std::string line(data, size * count);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    *head = ResponseHead();
    const auto space = line.find(' ');
    if (space != std::string::npos)
      head->status = std::strtol(line.c_str() + space + 1, nullptr, 10);
    return size * count;
  }
  const auto colon = line.find(':');
  if (colon == std::string::npos) return size * count;
  const std::string name = Lower(line.substr(0, colon));
  std::string value = line.substr(colon + 1);
  value.erase(0, value.find_first_not_of(" \t"));
  if (name == "content-length") {
    char* end = nullptr;
    const long long length = std::strtoll(value.c_str(), &end, 10);
    if (end != value.c_str() && length >= 0) head->content_length = length;
  } else if (name == "content-range") {
    long long start = 0, last = 0, total = 0;
    if (std::sscanf(value.c_str(), "bytes %lld-%lld/%lld", &start, &last, &total) == 3) {
      head->range_start = start;
      head->range_total = total;
    } else if (std::sscanf(value.c_str(), "bytes */%lld", &total) == 1) {
      head->range_total = total;
    }
  }
  return size * count;
}

/// The URL up to (not including) the query string or fragment, without credentials.
std::string WithoutSecrets(const std::string& url, bool* had_credentials, bool* had_query) {
  std::string rest = url;
  const auto query = rest.find_first_of("?#");
  if (had_query) *had_query = query != std::string::npos;
  if (query != std::string::npos) rest.resize(query);
  const auto scheme = rest.find("://");
  const std::size_t authority = scheme == std::string::npos ? 0 : scheme + 3;
  const auto path = rest.find('/', authority);
  const auto at = rest.rfind('@', path == std::string::npos ? std::string::npos : path);
  if (had_credentials) *had_credentials = false;
  if (at != std::string::npos && at >= authority) {
    rest.erase(authority, at + 1 - authority);
    if (had_credentials) *had_credentials = true;
  }
  return rest;
}

/// The scratch file's name: a hash of the URL without its query (a re-signed URL of the same
/// object finds its partial download again) and the URL's last path segment, which keeps the
/// extension that tells OpenCV the container.
std::string ScratchName(const std::string& url) {
  const std::string base = WithoutSecrets(url, nullptr, nullptr);
  std::string last = base.substr(base.find_last_of('/') + 1);
  if (base.find("://") != std::string::npos &&
      base.find('/', base.find("://") + 3) == std::string::npos)
    last.clear();  // "https://host": no path
  std::string safe;
  for (unsigned char c : last) {
    safe += (std::isalnum(c) || c == '.' || c == '-' || c == '_') ? static_cast<char>(c) : '_';
  }
  if (safe.size() > 100) safe.erase(0, safe.size() - 100);  // keep the extension
  if (safe.empty() || safe.find_first_not_of('.') == std::string::npos) safe = "input";
  return Fnv1aHex(base) + "-" + safe;
}

/// The HTTP error `status` as a Status naming the redacted URL.
Status HttpError(const std::string& url, long status) {
  const std::string message =
      "input '" + RedactUrl(url) + "': the server answered HTTP " + std::to_string(status);
  switch (status) {
    case 404:
    case 410:
      return NotFoundError(message + " (not found)");
    case 401:
    case 403:
      return Status(StatusCode::kPermissionDenied,
                    message + " (access denied; for a signed URL, check it has not expired)");
    default:
      return UnavailableError(message);
  }
}

CurlPtr NewHandle(const std::string& url, ResponseHead* head, char* error_buffer,
                  std::chrono::seconds connect_timeout) {
  GlobalInit();
  CurlPtr curl(curl_easy_init());
  if (!curl) return curl;
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "roilens");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, head);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
  error_buffer[0] = '\0';
  return curl;
}

std::string CurlMessage(CURLcode code, const char* error_buffer) {
  return error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code);
}

/// One download attempt's state, shared with the body callback.
struct Transfer {
  ResponseHead head;
  std::string part_path;
  std::int64_t offset = 0;  ///< bytes in the .part file when the request was made
  std::int64_t max_bytes = 0;
  std::int64_t total = -1;  ///< the whole file's length when the response said it
  std::int64_t written = 0;
  bool started = false;
  std::FILE* file = nullptr;
  enum Stop { kNone, kHttpError, kTooLarge, kWriteFailed, kUnexpectedRange } stop = kNone;
};

/// Opens the .part file for the response that has just begun: appends to it for a 206 that
/// continues where it ends, starts it over for a 200 (the server ignored the Range).
bool StartBody(Transfer& t) {
  t.started = true;
  const long status = t.head.status;
  bool append = false;
  if (status == 206) {
    if (t.head.range_start != t.offset) {
      t.stop = Transfer::kUnexpectedRange;
      return false;
    }
    append = t.offset > 0;
    t.total = t.head.range_total;
  } else if (status == 200) {
    t.offset = 0;
    t.total = t.head.content_length;
  } else {
    t.stop = Transfer::kHttpError;
    return false;
  }
  if (t.total < 0 && t.head.content_length >= 0) t.total = t.offset + t.head.content_length;
  if (t.total > t.max_bytes) {
    t.stop = Transfer::kTooLarge;
    return false;
  }
  t.file = std::fopen(t.part_path.c_str(), append ? "ab" : "wb");
  if (!t.file) {
    t.stop = Transfer::kWriteFailed;
    return false;
  }
  return true;
}

std::size_t OnBody(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t bytes = size * count;
  if (!t->started && !StartBody(*t)) return 0;  // 0: curl stops with CURLE_WRITE_ERROR
  if (t->offset + t->written + static_cast<std::int64_t>(bytes) > t->max_bytes) {
    t->stop = Transfer::kTooLarge;
    return 0;
  }
  if (std::fwrite(data, 1, bytes, t->file) != bytes) {
    t->stop = Transfer::kWriteFailed;
    return 0;
  }
  t->written += static_cast<std::int64_t>(bytes);
  return bytes;
}

/// Closes the .part file, flushed to disk (the rename that follows must not publish lost data).
bool CloseFile(Transfer& t) {
  if (!t.file) return true;
  bool ok = std::fflush(t.file) == 0 && ::fsync(fileno(t.file)) == 0;
  ok = std::fclose(t.file) == 0 && ok;
  t.file = nullptr;
  return ok;
}

std::string Mib(std::int64_t bytes) {
  return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB";
}

}  // namespace

bool IsRemoteInput(const std::string& input) {
  const std::string head = Lower(input.substr(0, 8));
  return head.rfind("http://", 0) == 0 || head.rfind("https://", 0) == 0;
}

std::string RedactUrl(const std::string& url) {
  bool credentials = false, query = false;
  std::string redacted = WithoutSecrets(url, &credentials, &query);
  if (credentials) {
    const auto scheme = redacted.find("://");
    redacted.insert(scheme == std::string::npos ? 0 : scheme + 3, "<credentials redacted>@");
  }
  if (query) redacted += "?<query redacted>";
  return redacted;
}

StatusOr<std::string> DownloadToFile(const std::string& url, const std::string& dir,
                                     const DownloadOptions& options) {
  const std::string shown = RedactUrl(url);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return InternalError("cannot create download folder '" + dir + "': " + ec.message());
  const std::string final_path = (fs::path(dir) / ScratchName(url)).string();
  const std::string part_path = final_path + ".part";
  if (options.reuse_complete && fs::is_regular_file(final_path, ec)) return final_path;
  fs::remove(final_path, ec);

  // Two attempts: a partial file the server cannot continue (the object changed, or no range
  // support beyond a 206 from elsewhere) is dropped and the download starts over once.
  for (int attempt = 0; attempt < 2; ++attempt) {
    Transfer t;
    t.part_path = part_path;
    t.max_bytes = options.max_bytes;
    const auto existing = fs::file_size(part_path, ec);
    t.offset = ec ? 0 : static_cast<std::int64_t>(existing);
    if (t.offset > options.max_bytes) {
      fs::remove(part_path, ec);
      t.offset = 0;
    }
    char error_buffer[CURL_ERROR_SIZE];
    CurlPtr curl = NewHandle(url, &t.head, error_buffer, options.connect_timeout);
    if (!curl) return InternalError("input '" + shown + "': libcurl could not start");
    CURL* c = curl.get();
    const std::string range = std::to_string(t.offset) + "-";
    if (t.offset > 0) curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.stall_timeout.count()));
    const CURLcode code = curl_easy_perform(c);
    // An empty body calls OnBody never: a 200 or 206 still makes (or keeps) the file.
    if (code == CURLE_OK && !t.started && (t.head.status == 200 || t.head.status == 206)) {
      if (StartBody(t) && t.head.status == 200) t.total = std::max<std::int64_t>(t.total, 0);
    }
    const bool closed = CloseFile(t);

    if (t.stop == Transfer::kTooLarge) {
      fs::remove(part_path, ec);
      return Status(StatusCode::kResourceExhausted,
                    "input '" + shown + "': " +
                        (t.total >= 0 ? "the file is " + Mib(t.total) : "the download grew") +
                        ", over the download cap of " + Mib(options.max_bytes) +
                        " (--max-download-mb); nothing was kept");
    }
    if (t.stop == Transfer::kWriteFailed || !closed) {
      return InternalError("input '" + shown + "': cannot write '" + part_path + "'");
    }
    if (t.head.status == 416 && t.offset > 0) {
      if (t.head.range_total == t.offset) break;  // the partial file was already complete
      fs::remove(part_path, ec);
      continue;
    }
    if (t.stop == Transfer::kUnexpectedRange) {
      fs::remove(part_path, ec);
      continue;
    }
    if (t.stop == Transfer::kHttpError || (t.head.status >= 300 && code == CURLE_OK)) {
      fs::remove(part_path, ec);  // the object is gone or refused: a partial copy is stale
      return HttpError(url, t.head.status);
    }
    if (code != CURLE_OK) {
      const auto have = fs::file_size(part_path, ec);
      return UnavailableError(
          "input '" + shown + "': download failed after " + std::to_string(ec ? 0 : have) +
          " bytes: " + CurlMessage(code, error_buffer) + "; run again to continue it");
    }
    const auto have = static_cast<std::int64_t>(fs::file_size(part_path, ec));
    if (ec) return InternalError("input '" + shown + "': the download left no file");
    if (t.total >= 0 && have != t.total) {
      fs::remove(part_path, ec);
      return Status(StatusCode::kDataLoss, "input '" + shown + "': downloaded " +
                                               std::to_string(have) + " bytes, the server said " +
                                               std::to_string(t.total));
    }
    break;
  }
  if (!fs::is_regular_file(part_path, ec)) {
    return UnavailableError("input '" + shown + "': the server could not continue the download");
  }
  fs::rename(part_path, final_path, ec);
  if (ec) return InternalError("cannot rename '" + part_path + "': " + ec.message());
  return final_path;
}

StatusOr<std::int64_t> RemoteSize(const std::string& url, std::chrono::seconds timeout) {
  const std::string shown = RedactUrl(url);
  ResponseHead head;
  char error_buffer[CURL_ERROR_SIZE];
  {
    CurlPtr curl = NewHandle(url, &head, error_buffer, timeout);
    if (!curl) return InternalError("input '" + shown + "': libcurl could not start");
    curl_easy_setopt(curl.get(), CURLOPT_NOBODY, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, static_cast<long>(timeout.count()));
    const CURLcode code = curl_easy_perform(curl.get());
    if (code == CURLE_OK && head.status == 200 && head.content_length >= 0) {
      return head.content_length;
    }
    if (code != CURLE_OK && head.status == 0) {
      return UnavailableError("input '" + shown + "': " + CurlMessage(code, error_buffer));
    }
    if (head.status == 404 || head.status == 410) return HttpError(url, head.status);
  }
  // HEAD refused (a URL signed for GET) or no length: ask for the first byte only; the body is
  // not read (the callback stops the transfer once the headers are in).
  head = ResponseHead();
  CurlPtr curl = NewHandle(url, &head, error_buffer, timeout);
  if (!curl) return InternalError("input '" + shown + "': libcurl could not start");
  curl_easy_setopt(curl.get(), CURLOPT_RANGE, "0-0");
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, static_cast<long>(timeout.count()));
  curl_easy_setopt(
      curl.get(), CURLOPT_WRITEFUNCTION,
      +[](char*, std::size_t, std::size_t, void*) -> std::size_t { return 0; });
  const CURLcode code = curl_easy_perform(curl.get());
  if (head.status == 206 && head.range_total >= 0) return head.range_total;
  if (head.status == 200 && head.content_length >= 0) return head.content_length;
  if (head.status >= 300) return HttpError(url, head.status);
  if (head.status == 0) {
    return UnavailableError("input '" + shown + "': " + CurlMessage(code, error_buffer));
  }
  return FailedPreconditionError("input '" + shown + "': the server does not say its size");
}

}  // namespace roilens::cli
