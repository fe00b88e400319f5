# Stamps version, git commit, build time and the release public key into
# build_info.cpp on every build. The file is only rewritten when its content
# changes, so an unchanged tree does not relink.
#
# BANGER_VERSION: the version this build calls itself (a test builds two
# versions of one tree to update from one to the other).
# BANGER_RELEASE_PUBKEY: the Ed25519 public key (PEM) whose signature
# `banger update` requires on a release manifest (docs/install.md).
set(BANGER_VERSION "${PROJECT_VERSION}" CACHE STRING "version stamped into the build")
if(NOT BANGER_VERSION MATCHES "^[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.]+)?$")
  message(FATAL_ERROR "BANGER_VERSION '${BANGER_VERSION}' is not MAJOR.MINOR.PATCH[-PRE]")
endif()
set(BANGER_RELEASE_PUBKEY "${CMAKE_SOURCE_DIR}/dist/keys/banger-release.pub.pem"
  CACHE FILEPATH "PEM public key that signs the release manifests banger update trusts")
if(NOT EXISTS "${BANGER_RELEASE_PUBKEY}")
  message(FATAL_ERROR "BANGER_RELEASE_PUBKEY: no such file: ${BANGER_RELEASE_PUBKEY}")
endif()
set(BANGER_BUILD_INFO_CPP ${CMAKE_BINARY_DIR}/generated/build_info.cpp)
add_custom_target(banger_build_info
  COMMAND ${CMAKE_COMMAND}
    -DOUT=${BANGER_BUILD_INFO_CPP}
    -DVERSION=${BANGER_VERSION}
    -DPUBKEY=${BANGER_RELEASE_PUBKEY}
    -DSRC=${CMAKE_SOURCE_DIR}
    -P ${CMAKE_SOURCE_DIR}/cmake/WriteBuildInfo.cmake
  BYPRODUCTS ${BANGER_BUILD_INFO_CPP}
  COMMENT "Stamping build info")
