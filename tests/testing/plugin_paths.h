// Where the plugin tests find the built plugin library, the in-tree sample app and the build's
// settings: read from <build>/plugin_paths.txt, which plugin/CMakeLists.txt generates.
#pragma once
#include <string>

namespace roilens::testing {

struct PluginPaths {
  std::string plugin;      ///< libroilens_plugin.so.<ABI> ("" when the plugin is not built)
  std::string sample_app;  ///< roilens_sample_app
  bool sanitize = false;   ///< built with ASan+UBSan (Python cannot load such a library)
  bool tsan = false;
  std::string cmake;                   ///< the cmake that configured this build
  std::string generator;               ///< its generator ("Ninja", "Unix Makefiles")
  std::string cxx;                     ///< the C++ compiler
  std::string libdir = "lib";          ///< CMAKE_INSTALL_LIBDIR (relative to the prefix)
  std::string includedir = "include";  ///< CMAKE_INSTALL_INCLUDEDIR
};

/// Parsed once; fields stay empty when the file is missing.
const PluginPaths& GetPluginPaths();

}  // namespace roilens::testing
