#pragma once

// Logging: glog. LOG(INFO|WARNING|ERROR) << ...; VLOG(1) for debug detail
// (tuskd --log-level debug); CHECK for programmer errors only (STYLE.md).
// A daemon's main() sets logging up with InitDaemon (common/daemon.h): one
// line per message on stderr, "2026-11-21T09:51:00.123Z I file.cc:12] ...",
// and a stack trace on a crash. Thread-safe.

#include <glog/logging.h>
