# Every third-party dependency of tusk is found here, and only here.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(Protobuf REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(Snappy CONFIG REQUIRED)
# gflags (the daemons' flags) and glog (logging everywhere, crash traces).
find_package(gflags CONFIG REQUIRED)
find_package(glog CONFIG REQUIRED)

# gRPC and RocksDB: Debian ships pkg-config files for both; use them.
pkg_check_modules(GRPCPP REQUIRED IMPORTED_TARGET grpc++)
pkg_check_modules(ROCKSDB REQUIRED IMPORTED_TARGET rocksdb)
# librdkafka (Kafka client and its mock cluster): only ingest/ links it.
pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)
# libarchive (tar streams for put file --untar): only the CLI links it.
pkg_check_modules(LIBARCHIVE REQUIRED IMPORTED_TARGET libarchive)
# yaml-cpp (YAML spec files): only cli/spec_file links it.
# libcurl (HTTP(S) and S3): only http/ links it.
pkg_check_modules(LIBCURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(YAML_CPP REQUIRED IMPORTED_TARGET yaml-cpp)
find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
# prometheus-cpp (metric types and the text format): only common/metrics
# links it. civetweb (the HTTP listener for /metrics, health, later the S3
# gateway): only http/http_server links it.
find_package(prometheus-cpp CONFIG REQUIRED)
find_package(civetweb CONFIG REQUIRED)
# libmicrohttpd (the S3 gateway's HTTP/1.1 server) and expat (its XML
# request bodies): only s3gw links them.
pkg_check_modules(MICROHTTPD REQUIRED IMPORTED_TARGET libmicrohttpd)
find_package(EXPAT REQUIRED)
# JSON documents (pod specs, the Kubernetes API); header-only.
find_package(nlohmann_json CONFIG REQUIRED)

if(TUSK_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)
endif()
if(TUSK_BUILD_BENCHMARKS)
  find_package(benchmark CONFIG REQUIRED)
endif()
