#pragma once

// Egress to S3: the EgressWriter (dispatcher/egress.h) that tuskd gives its
// dispatcher. A file becomes the object PREFIX/PATH of the egress URL's
// bucket: one PUT if it fits in a part, else a multipart upload whose parts
// go up while the next ones are read. Uploads run on `parallelism` threads
// with at most 2 x parallelism parts (of part_size bytes) in memory, so a
// file of any size goes through bounded memory. http::S3Client retries each
// request (5xx, 429, timeouts) before the writer reports an error.
//
// The endpoint, region and credentials are tuskd's (--egress-* flags and
// the AWS environment), never a spec's.

#include <cstddef>

#include "dispatcher/egress.h"
#include "http/s3.h"

namespace tusk::server {

struct S3EgressOptions {
  // Endpoint (empty: AWS), region, retries; empty credentials: read from
  // the AWS environment at each egress.
  http::S3Options s3;
  size_t part_size = 8 << 20;
  int parallelism = 8;
};

// The opener of writers into s3://BUCKET/PREFIX URLs. Thread-safe.
dispatcher::EgressOpener MakeS3Egress(const S3EgressOptions& options);

}  // namespace tusk::server
