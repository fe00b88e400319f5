# Stamps version, git commit and build time into build_info.cpp on every
# build. The file is only rewritten when its content changes, so an
# unchanged tree does not relink.
set(BANGER_BUILD_INFO_CPP ${CMAKE_BINARY_DIR}/generated/build_info.cpp)
add_custom_target(banger_build_info
  COMMAND ${CMAKE_COMMAND}
    -DOUT=${BANGER_BUILD_INFO_CPP}
    -DVERSION=${PROJECT_VERSION}
    -DSRC=${CMAKE_SOURCE_DIR}
    -P ${CMAKE_SOURCE_DIR}/cmake/WriteBuildInfo.cmake
  BYPRODUCTS ${BANGER_BUILD_INFO_CPP}
  COMMENT "Stamping build info")
