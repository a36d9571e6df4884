# Installs the gort::gort package so consumers can find_package(gort CONFIG REQUIRED).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS gort EXPORT gortTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/gort DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT gortTargets NAMESPACE gort:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/gort)
configure_package_config_file(cmake/gortConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/gortConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/gort)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/gortConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/gortConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/gortConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/gort)
