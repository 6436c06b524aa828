# Hourly ConfigMap writer (issue 4), included from aggregator/CMakeLists.txt.
add_library(ashiato_cm STATIC
  ${CMAKE_CURRENT_LIST_DIR}/cm_key.cc
  ${CMAKE_CURRENT_LIST_DIR}/cm_shard.cc
  ${CMAKE_CURRENT_LIST_DIR}/cm_writer.cc
  ${CMAKE_CURRENT_LIST_DIR}/cm_writer_flags.cc
  ${CMAKE_CURRENT_LIST_DIR}/cm_api_kube.cc
)
target_include_directories(ashiato_cm PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(ashiato_cm PUBLIC
  ashiato_common
  nlohmann_json::nlohmann_json
  prometheus-cpp::core
  spdlog::spdlog
)
if(TARGET CLI11::CLI11)
  target_link_libraries(ashiato_cm PUBLIC CLI11::CLI11)
endif()

# In-memory ConfigMapApi for tests and benchmarks.
add_library(ashiato_cm_testing STATIC ${CMAKE_CURRENT_LIST_DIR}/cm_fake_api.cc)
target_link_libraries(ashiato_cm_testing PUBLIC ashiato_cm)

add_executable(cm_test
  ${CMAKE_CURRENT_LIST_DIR}/cm_key_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/cm_shard_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/cm_writer_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/cm_writer_flags_test.cc
)
target_link_libraries(cm_test PRIVATE ashiato_cm_testing GTest::gtest_main GTest::gmock)
gtest_discover_tests(cm_test DISCOVERY_TIMEOUT 30)

# Against a real kubesim process and kubectl, once kubesim's test helper exists.
if(EXISTS ${PROJECT_SOURCE_DIR}/tests/kubesim/kubesim_process.h)
  add_executable(cm_kubesim_test ${CMAKE_CURRENT_LIST_DIR}/cm_kubesim_test.cc)
  target_link_libraries(cm_kubesim_test PRIVATE ashiato_cm_testing kubesim_testing
    GTest::gtest_main)
  add_dependencies(cm_kubesim_test kubesim)
  gtest_discover_tests(cm_kubesim_test DISCOVERY_TIMEOUT 30)
endif()
