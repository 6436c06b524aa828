# Benchmark 4: the hourly ConfigMap writer (aggregator/cm_*) at 150,000 pods.
add_executable(cm_bench ${CMAKE_CURRENT_LIST_DIR}/cm_bench.cc)
target_link_libraries(cm_bench PRIVATE ashiato_cm_testing)
