// http(s):// inputs of `roilens run`: a recording on a web server or object storage (a signed S3 or
// GCS URL) is downloaded to a scratch file first, with a size cap and resume, then opened as a
// file.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "roilens/client/status.h"

namespace roilens::cli {

/// Default --max-download-mb: 4 GiB, about an hour of 1080p H.264 at 8 Mbit/s.
inline constexpr std::int64_t kDefaultMaxDownloadMb = 4096;

struct DownloadOptions {
  /// The largest file accepted, in bytes: a larger Content-Length is refused before the body
  /// arrives, a body that grows past it (no or wrong Content-Length) is stopped there.
  std::int64_t max_bytes = kDefaultMaxDownloadMb * 1024 * 1024;
  /// Reuse a complete download of the same URL left in the scratch folder (--resume) instead of
  /// fetching it again. A partial one (".part") is always continued with a Range request.
  bool reuse_complete = false;
  std::chrono::seconds connect_timeout{30};
  /// A transfer slower than 1 byte/s for this long fails (its partial file is kept for a resume).
  std::chrono::seconds stall_timeout{60};
};

/// True for the inputs downloaded before a batch run: "http://..." and "https://..." (any case).
bool IsRemoteInput(const std::string& input);

/// `url` fit for logs, errors and summary.json: credentials ("user:pass@") and the query string
/// and fragment (where signed URLs carry their signature and token) are replaced by markers.
std::string RedactUrl(const std::string& url);

/// Downloads `url` into `dir` (created if missing) and returns the local file's path. The body
/// goes to "<name>.part" and is renamed to "<name>" only when complete (its length matches the
/// Content-Length when the server sent one), so a complete-looking file is never a cut-off one.
/// A ".part" left by an earlier attempt is continued with a Range request when the server answers
/// 206; a 200 starts over. Over the cap, on HTTP errors and on a wrong length the partial file is
/// removed; on a transport failure (reset, stall) it is kept so the next attempt resumes.
/// Errors name the URL only in its RedactUrl form. Thread-compatible: one call per file at a time.
StatusOr<std::string> DownloadToFile(const std::string& url, const std::string& dir,
                                     const DownloadOptions& options = {});

/// The size in bytes of the file at `url`, without downloading it: a HEAD request's
/// Content-Length, or, where HEAD is refused (URLs signed for GET only) or says no length, the
/// total of a one-byte Range GET's Content-Range. For balancing shards of remote inputs by size.
StatusOr<std::int64_t> RemoteSize(const std::string& url,
                                  std::chrono::seconds timeout = std::chrono::seconds(30));

}  // namespace roilens::cli
