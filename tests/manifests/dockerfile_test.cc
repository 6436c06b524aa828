#include "tests/manifests/dockerfile.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ashiato::testing {
namespace {

using ::testing::ElementsAre;

TEST(DockerfileParse, StagesArgsLabelsAndPackages) {
  Dockerfile df = ParseDockerfile(R"(# syntax=docker/dockerfile:1
ARG IMAGE_NAME=ghcr.io/x/y
ARG VERSION=1.2.3
FROM --platform=linux/amd64 debian:bookworm AS build
RUN apt-get update \
 # a comment inside a continuation
 && apt-get install -y --no-install-recommends make g++ \
 && rm -rf /var/lib/apt/lists/*
RUN make build BUILD_TYPE=Release; strip a

FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="y" \
      org.opencontainers.image.description="two words" plain=v
RUN apt-get -y install libfoo1 && true
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/y"]
)");
  EXPECT_EQ(df.global_args["IMAGE_NAME"], "ghcr.io/x/y");
  EXPECT_EQ(df.global_args["VERSION"], "1.2.3");
  ASSERT_EQ(df.stages.size(), 2u);
  EXPECT_EQ(df.stages[0].base, "debian:bookworm");
  EXPECT_EQ(df.stages[0].name, "build");
  EXPECT_THAT(df.stages[0].AptPackages(), ElementsAre("make", "g++"));
  EXPECT_THAT(
      df.stages[0].RunCommands(),
      ElementsAre("apt-get update", "apt-get install -y --no-install-recommends make g++",
                  "rm -rf /var/lib/apt/lists/*", "make build BUILD_TYPE=Release", "strip a"));
  EXPECT_EQ(df.stages[1].base, "debian:bookworm-slim");
  EXPECT_EQ(df.stages[1].name, "");
  auto labels = df.stages[1].Labels();
  EXPECT_EQ(labels["org.opencontainers.image.title"], "y");
  EXPECT_EQ(labels["org.opencontainers.image.description"], "two words");
  EXPECT_EQ(labels["plain"], "v");
  EXPECT_THAT(df.stages[1].AptPackages(), ElementsAre("libfoo1"));
  EXPECT_THAT(df.stages[1].All("USER"), ElementsAre("65532:65532"));
  EXPECT_THAT(df.stages[1].All("ENTRYPOINT"), ElementsAre("[\"/usr/local/bin/y\"]"));
}

}  // namespace
}  // namespace ashiato::testing
