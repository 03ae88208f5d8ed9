# fetchrelay_add_plugin(name SOURCES file... [LIBS target...])
# A loadable fetchrelay plugin: the module <name>.so (no "lib" prefix), C++20, only the entry
# symbol exported. Put the folder holding it in plugins.search_path and the name in plugins.load.
function(fetchrelay_add_plugin name)
  cmake_parse_arguments(P "" "" "SOURCES;LIBS" ${ARGN})
  add_library(${name} MODULE ${P_SOURCES})
  target_link_libraries(${name} PRIVATE fetchrelay::plugin_sdk ${P_LIBS})
  target_compile_features(${name} PRIVATE cxx_std_20)
  set_target_properties(${name} PROPERTIES PREFIX "" CXX_VISIBILITY_PRESET hidden C_VISIBILITY_PRESET hidden)
endfunction()
