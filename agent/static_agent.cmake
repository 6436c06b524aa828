# ASHIATO_STATIC_AGENT (`make agent-static`, docs/benchmarks.md "Agent memory"):
# the dependency targets the rest of the build links, defined on static libraries
# so that ashiato-agent links into one self-contained executable that maps no
# shared library at all. Included from the top-level CMakeLists.txt instead of
# its find_package/pkg_check_modules calls for these libraries.
#   libcurl, libmicrohttpd (no HTTPS), prometheus-cpp core: ASHIATO_STATIC_DEPS,
#     built from Debian's sources by tests/images/static_agent_deps.sh;
#   simdjson: the same prefix, from the same script (the agent does not link
#     it; the aggregator's decoder target, configured here too, names it);
#   mbedTLS (libcurl's TLS and common/sha256.h), zlib, yaml-cpp: the .a files
#     of Debian's -dev packages (OpenSSL is found only for the excluded
#     targets' names: the agent does not link it);
#   spdlog and fmt: header-only (Debian ships them as shared libraries only).
if(NOT ASHIATO_STATIC_DEPS OR NOT EXISTS ${ASHIATO_STATIC_DEPS}/lib/libcurl.a)
  message(FATAL_ERROR "ASHIATO_STATIC_AGENT needs ASHIATO_STATIC_DEPS, the prefix that "
                      "tests/images/static_agent_deps.sh fills (make agent-static does both)")
endif()

# Sections per function and object, so --gc-sections drops what is never called.
add_compile_options(-ffunction-sections -fdata-sections)

set(OPENSSL_USE_STATIC_LIBS TRUE)
set(ZLIB_USE_STATIC_LIBS TRUE)
find_package(OpenSSL REQUIRED)
find_package(ZLIB REQUIRED)
find_library(ASHIATO_MBEDTLS_STATIC libmbedtls.a REQUIRED)
find_library(ASHIATO_MBEDX509_STATIC libmbedx509.a REQUIRED)
find_library(ASHIATO_MBEDCRYPTO_STATIC libmbedcrypto.a REQUIRED)
add_library(MbedTLS::crypto INTERFACE IMPORTED)
target_link_libraries(MbedTLS::crypto INTERFACE ${ASHIATO_MBEDCRYPTO_STATIC})
find_package(fmt REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED PATHS ${ASHIATO_STATIC_DEPS} NO_DEFAULT_PATH)
find_package(simdjson CONFIG REQUIRED PATHS ${ASHIATO_STATIC_DEPS} NO_DEFAULT_PATH)

# spdlog in header-only mode on the header-only fmt (no SPDLOG_COMPILED_LIB).
add_library(spdlog::spdlog INTERFACE IMPORTED)
target_compile_definitions(spdlog::spdlog INTERFACE SPDLOG_FMT_EXTERNAL)
target_link_libraries(spdlog::spdlog INTERFACE fmt::fmt-header-only Threads::Threads)

find_library(ASHIATO_YAML_CPP_STATIC libyaml-cpp.a REQUIRED)
add_library(yaml-cpp INTERFACE IMPORTED)
target_link_libraries(yaml-cpp INTERFACE ${ASHIATO_YAML_CPP_STATIC})

# The names pkg_check_modules would have defined, so common/ links them unchanged.
add_library(PkgConfig::CURL INTERFACE IMPORTED)
target_include_directories(PkgConfig::CURL INTERFACE ${ASHIATO_STATIC_DEPS}/include)
target_link_libraries(PkgConfig::CURL INTERFACE ${ASHIATO_STATIC_DEPS}/lib/libcurl.a
  ${ASHIATO_MBEDTLS_STATIC} ${ASHIATO_MBEDX509_STATIC} MbedTLS::crypto ZLIB::ZLIB
  Threads::Threads)

add_library(PkgConfig::MHD INTERFACE IMPORTED)
target_include_directories(PkgConfig::MHD INTERFACE ${ASHIATO_STATIC_DEPS}/include)
target_link_libraries(PkgConfig::MHD INTERFACE ${ASHIATO_STATIC_DEPS}/lib/libmicrohttpd.a
  Threads::Threads)
