// Starting the real fetchrelay executable from tests: spawn, read its port file, signal it,
// wait for it with a bound. Only processes started here are signalled, by PID.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fetchrelay::test {

/// A fresh temporary directory, removed with its contents on destruction.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  /// Writes `content` to file(name) and returns the path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

struct exit_info {
  bool exited = false;  // false: still running at the deadline (it was then killed)
  int code = -1;        // exit code when it exited normally
  int signal = 0;       // signal number when it was killed by one
};

class process {
 public:
  /// Starts `binary args...` with stdout and stderr sent to `log_path`.
  process(const std::string& binary, const std::vector<std::string>& args,
          const std::string& log_path);
  ~process();  // kills (SIGKILL) and reaps if still running

  pid_t pid() const { return pid_; }
  void signal(int sig) const;
  /// Waits for exit; past the timeout, kills it and returns exited=false.
  exit_info wait(std::chrono::milliseconds timeout);
  /// Reads the whole log file.
  std::string log() const;

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string log_path_;
};

/// Polls until `path` holds a port number; nullopt after the timeout.
std::optional<std::uint16_t> wait_for_port_file(const std::string& path,
                                                std::chrono::milliseconds timeout);

/// Runs a command to completion (bounded); returns its exit info and combined output.
exit_info run_command(const std::string& binary, const std::vector<std::string>& args,
                      std::string& output, std::chrono::milliseconds timeout);

/// The messages of text log lines, each cut before its first field named `cut` (e.g. " config=":
/// config errors carry the file and key as fields).
inline std::vector<std::string> log_messages(const std::string& text, const std::string& cut);

/// The messages of text log lines ("2026-11-29T10:00:00.123Z error msg"), without the time and
/// level; a line without that prefix is kept whole. Empty lines are dropped.
inline std::vector<std::string> log_messages(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    if (line.size() > 25 && line[4] == '-' && line[10] == 'T' && line[23] == 'Z' && line[24] == ' ') {
      auto msg = line.find_first_not_of(' ', line.find(' ', 25));
      line = msg == std::string::npos ? "" : line.substr(msg);
    }
    out.push_back(line);
  }
  return out;
}

inline std::vector<std::string> log_messages(const std::string& text, const std::string& cut) {
  auto lines = log_messages(text);
  for (auto& l : lines) {
    if (auto p = l.find(cut); p != std::string::npos) l.erase(p);
  }
  return lines;
}

}  // namespace fetchrelay::test
