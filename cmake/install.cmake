# Install rules: headers, the two static libraries, the tools (protoc-gen-cmdwire among them),
# the CMake package (cmdwireConfig.cmake, version file, exported targets,
# cmdwire_protobuf_generate) and cmdwire.pc; plus CPack for `make package` (a .deb).

install(DIRECTORY include/cmdwire DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/cmdwire/version.hpp
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/cmdwire)

install(TARGETS cmdwire cmdwire_core EXPORT cmdwireTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(CMDWIRE_BUILD_TOOLS)
  install(TARGETS cmdwire-server cmdwire-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
if(TARGET protoc-gen-cmdwire)
  # Exported too: find_package(cmdwire) imports it as cmdwire::protoc-gen-cmdwire, the plugin
  # that cmdwire_protobuf_generate runs.
  install(TARGETS protoc-gen-cmdwire EXPORT cmdwireTargets
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

set(cmdwire_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/cmdwire)
install(EXPORT cmdwireTargets NAMESPACE cmdwire:: DESTINATION ${cmdwire_cmake_dir})
configure_package_config_file(cmake/cmdwireConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmdwireConfig.cmake INSTALL_DESTINATION ${cmdwire_cmake_dir})
# 0.x: a minor release may break the API, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmdwireConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmdwireConfig.cmake
  ${PROJECT_BINARY_DIR}/cmdwireConfigVersion.cmake cmake/cmdwire_protobuf_generate.cmake
  DESTINATION ${cmdwire_cmake_dir})

# cmdwire.pc is written at install time, so that `cmake --install --prefix P` gets prefix=P.
install(CODE "
  set(CMAKE_INSTALL_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(CMAKE_INSTALL_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(CMAKE_INSTALL_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  configure_file(\"${PROJECT_SOURCE_DIR}/cmake/cmdwire.pc.in\"
    \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig/cmdwire.pc\" @ONLY)
")

# ---- `make package`: one .deb with the tools, the headers and the libraries.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cmdwire)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "cmdwire developers <cmdwire@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "named commands with typed payloads over TCP: library, server, CLI and protoc plugin")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
# The tools' shared libraries (libc6, libstdc++6, libprotobuf32, libprotoc32, libfmt9, libssl3,
# ...) come from dpkg-shlibdeps; the headers and static libraries need the -dev packages below,
# and cmdwire_protobuf_generate needs protoc.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# pkg-config and libhiredis-dev: the installed package config finds hiredis (the Redis pub/sub
# backplane, linked by the static library) through pkg-config.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libboost1.81-dev, libcereal-dev, libprotobuf-dev, \
protobuf-compiler, libfmt-dev, libssl-dev, libhiredis-dev, pkg-config")
include(CPack)
