#include "io/env.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "testing/mem_env.h"
#include "testing/temp_dir.h"

namespace evert::io {
namespace {

using evert::testing::MemEnv;
using evert::testing::TempDir;

std::string read_all(const File& f) {
  auto size = f.size_bytes();
  EXPECT_TRUE(size.is_ok());
  std::string out(size.is_ok() ? *size : 0, '\0');
  auto n = f.read_at(0, MutableByteSpan(reinterpret_cast<uint8_t*>(out.data()), out.size()));
  EXPECT_TRUE(n.is_ok());
  out.resize(n.is_ok() ? *n : 0);
  return out;
}

std::set<std::string> listing(Env& env, const std::string& dir) {
  auto names = env.list_dir(dir);
  EXPECT_TRUE(names.is_ok()) << names.status().to_string();
  return names.is_ok() ? std::set<std::string>(names->begin(), names->end()) : std::set<std::string>();
}

// ---------------------------------------------------------------------------
// Pure path helpers.

TEST(Paths, JoinPath) {
  EXPECT_EQ(join_path("a", "b"), "a/b");
  EXPECT_EQ(join_path("a/", "b"), "a/b");
  EXPECT_EQ(join_path("", "b"), "b");
  EXPECT_EQ(join_path("/", "b"), "/b");
}

TEST(Paths, ParentDir) {
  EXPECT_EQ(parent_dir("/a/b/c"), "/a/b");
  EXPECT_EQ(parent_dir("/a"), "/");
  EXPECT_EQ(parent_dir("a"), ".");
  EXPECT_EQ(parent_dir("a/b"), "a");
}

// ---------------------------------------------------------------------------
// The Env contract, run against the real file system and MemEnv alike.

class EnvContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "posix") {
      temp_ = std::make_unique<TempDir>();
      env_ = &Env::posix();
      root_ = temp_->path();
    } else {
      mem_ = std::make_unique<MemEnv>();
      env_ = mem_.get();
      root_ = "/root";
      ASSERT_TRUE(env_->create_dir(root_).is_ok());
    }
  }
  std::string path(const std::string& name) const { return join_path(root_, name); }
  Env& env() { return *env_; }

  std::unique_ptr<TempDir> temp_;
  std::unique_ptr<MemEnv> mem_;
  Env* env_ = nullptr;
  std::string root_;
};

TEST_P(EnvContractTest, OpenModes) {
  EXPECT_EQ(env().open_file(path("f"), OpenMode::kReadOnly).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(env().open_file(path("f"), OpenMode::kReadWrite).status().code(), ErrorCode::kNotFound);
  {
    auto f = env().open_file(path("f"), OpenMode::kCreateNew);
    ASSERT_TRUE(f.is_ok()) << f.status().to_string();
    ASSERT_TRUE((*f)->write_at(0, as_bytes("hello")).is_ok());
    EXPECT_EQ((*f)->path(), path("f"));
  }
  EXPECT_EQ(env().open_file(path("f"), OpenMode::kCreateNew).status().code(), ErrorCode::kAlreadyExists);
  auto again = env().open_file(path("f"), OpenMode::kCreateReadWrite);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(read_all(**again), "hello");  // kept, not truncated
  auto ro = env().open_file(path("f"), OpenMode::kReadOnly);
  ASSERT_TRUE(ro.is_ok());
  EXPECT_EQ(read_all(**ro), "hello");
  EXPECT_FALSE((*ro)->write_at(0, as_bytes("x")).is_ok());
  EXPECT_EQ(read_all(**ro), "hello");
}

TEST_P(EnvContractTest, OpenInMissingDirectoryFails) {
  EXPECT_EQ(env().open_file(path("nodir/f"), OpenMode::kCreateReadWrite).status().code(), ErrorCode::kNotFound);
}

TEST_P(EnvContractTest, WriteReadTruncate) {
  auto f = env().open_file(path("f"), OpenMode::kCreateReadWrite);
  ASSERT_TRUE(f.is_ok());
  File& file = **f;
  ASSERT_TRUE(file.write_at(0, as_bytes("abcdef")).is_ok());
  ASSERT_TRUE(file.write_at(2, as_bytes("XY")).is_ok());
  EXPECT_EQ(read_all(file), "abXYef");
  // A write past the end leaves a zero-filled hole.
  ASSERT_TRUE(file.write_at(8, as_bytes("Z")).is_ok());
  EXPECT_EQ(read_all(file), std::string("abXYef\0\0Z", 9));
  EXPECT_EQ(*file.size_bytes(), 9u);
  EXPECT_EQ(*env().file_size(path("f")), 9u);

  // Reads are short only at the end of the file.
  uint8_t buf[4];
  auto n = file.read_at(7, MutableByteSpan(buf, 4));
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, 2u);
  n = file.read_at(100, MutableByteSpan(buf, 4));
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, 0u);

  ASSERT_TRUE(file.truncate(3).is_ok());
  EXPECT_EQ(read_all(file), "abX");
  ASSERT_TRUE(file.truncate(5).is_ok());
  EXPECT_EQ(read_all(file), std::string("abX\0\0", 5));
  EXPECT_TRUE(file.sync_data().is_ok());
}

TEST_P(EnvContractTest, DirectoryOperations) {
  ASSERT_TRUE(env().create_dir(path("d")).is_ok());
  EXPECT_TRUE(env().create_dir(path("d")).is_ok());  // exists already: fine
  EXPECT_TRUE(env().dir_exists(path("d")));
  EXPECT_FALSE(env().file_exists(path("d")));
  EXPECT_FALSE(env().create_dir(path("x/y")).is_ok());  // no parent
  ASSERT_TRUE(env().open_file(path("d/a"), OpenMode::kCreateNew).is_ok());
  ASSERT_TRUE(env().open_file(path("d/b"), OpenMode::kCreateNew).is_ok());
  ASSERT_TRUE(env().create_dir(path("d/sub")).is_ok());
  EXPECT_EQ(listing(env(), path("d")), (std::set<std::string>{"a", "b", "sub"}));
  EXPECT_TRUE(env().file_exists(path("d/a")));
  EXPECT_FALSE(env().dir_exists(path("d/a")));
  EXPECT_TRUE(env().sync_dir(path("d")).is_ok());

  EXPECT_FALSE(env().remove_dir(path("d")).is_ok());  // not empty
  ASSERT_TRUE(env().remove_file(path("d/a")).is_ok());
  EXPECT_EQ(env().remove_file(path("d/a")).code(), ErrorCode::kNotFound);
  EXPECT_FALSE(env().file_exists(path("d/a")));
  EXPECT_EQ(env().list_dir(path("missing")).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(env().file_size(path("missing")).status().code(), ErrorCode::kNotFound);
}

TEST_P(EnvContractTest, RenameReplacesTarget) {
  {
    auto a = env().open_file(path("a"), OpenMode::kCreateNew);
    ASSERT_TRUE((*a)->write_at(0, as_bytes("new")).is_ok());
    auto b = env().open_file(path("b"), OpenMode::kCreateNew);
    ASSERT_TRUE((*b)->write_at(0, as_bytes("old")).is_ok());
  }
  ASSERT_TRUE(env().rename(path("a"), path("b")).is_ok());
  EXPECT_FALSE(env().file_exists(path("a")));
  EXPECT_EQ(*read_whole_file(env(), path("b")), "new");
  EXPECT_EQ(env().rename(path("a"), path("c")).code(), ErrorCode::kNotFound);
}

TEST_P(EnvContractTest, CreateDirsAndRemoveTree) {
  ASSERT_TRUE(create_dirs(env(), path("x/y/z")).is_ok());
  EXPECT_TRUE(env().dir_exists(path("x/y/z")));
  EXPECT_TRUE(create_dirs(env(), path("x/y/z")).is_ok());
  ASSERT_TRUE(write_file_atomically(env(), path("x/y/z/f"), as_bytes("1")).is_ok());
  ASSERT_TRUE(write_file_atomically(env(), path("x/y/g"), as_bytes("2")).is_ok());
  ASSERT_TRUE(remove_tree(env(), path("x")).is_ok());
  EXPECT_FALSE(env().dir_exists(path("x")));
  EXPECT_TRUE(remove_tree(env(), path("x")).is_ok());  // nothing left: fine
  EXPECT_TRUE(env().dir_exists(root_));
}

TEST_P(EnvContractTest, WriteFileAtomicallyReplacesAndLeavesNoTemp) {
  ASSERT_TRUE(write_file_atomically(env(), path("meta"), as_bytes("first version")).is_ok());
  ASSERT_TRUE(write_file_atomically(env(), path("meta"), as_bytes("v2")).is_ok());
  auto text = read_whole_file(env(), path("meta"));
  ASSERT_TRUE(text.is_ok());
  EXPECT_EQ(*text, "v2");  // shorter than before: the old bytes are gone
  EXPECT_EQ(listing(env(), root_), std::set<std::string>{"meta"});
  EXPECT_EQ(read_whole_file(env(), path("nothing")).status().code(), ErrorCode::kNotFound);
}

TEST_P(EnvContractTest, LockIsExclusiveUntilReleased) {
  auto first = env().lock_file(path(".lock"));
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  auto second = env().lock_file(path(".lock"));
  EXPECT_EQ(second.status().code(), ErrorCode::kBusy);
  first.value().reset();
  auto third = env().lock_file(path(".lock"));
  EXPECT_TRUE(third.is_ok()) << third.status().to_string();
}

INSTANTIATE_TEST_SUITE_P(Envs, EnvContractTest, ::testing::Values("posix", "mem"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// ---------------------------------------------------------------------------
// Posix only.

TEST(PosixEnv, FilesHaveADescriptorForSendfile) {
  TempDir dir;
  auto f = Env::posix().open_file(dir.file("f"), OpenMode::kCreateNew);
  ASSERT_TRUE(f.is_ok());
  EXPECT_GE((*f)->native_handle(), 0);
}

TEST(PosixEnv, FullDiskMapsToNoSpace) {
  if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no writable /dev/full";
  auto f = Env::posix().open_file("/dev/full", OpenMode::kReadWrite);
  if (!f.is_ok()) GTEST_SKIP() << f.status().to_string();
  Status s = (*f)->write_at(0, as_bytes("x"));
  EXPECT_EQ(s.code(), ErrorCode::kNoSpace) << s.to_string();
}

// ---------------------------------------------------------------------------
// MemEnv durability model: what survives crash().

class MemEnvCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.create_dir("/d").is_ok());
    ASSERT_TRUE(env_.sync_dir("/").is_ok());
  }
  std::unique_ptr<File> create(const std::string& path) {
    auto f = env_.open_file(path, OpenMode::kCreateNew);
    EXPECT_TRUE(f.is_ok());
    return f.is_ok() ? std::move(f).value() : nullptr;
  }
  std::string contents(const std::string& path) {
    auto c = env_.contents(path);
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    return c.is_ok() ? *c : "";
  }
  MemEnv env_;
};

TEST_F(MemEnvCrashTest, UnsyncedDataVanishes) {
  auto f = create("/d/f");
  ASSERT_TRUE(env_.sync_dir("/d").is_ok());
  ASSERT_TRUE(f->write_at(0, as_bytes("abc")).is_ok());
  ASSERT_TRUE(f->sync_data().is_ok());
  ASSERT_TRUE(f->write_at(3, as_bytes("def")).is_ok());
  EXPECT_EQ(contents("/d/f"), "abcdef");
  env_.crash();
  EXPECT_EQ(contents("/d/f"), "abc");
}

TEST_F(MemEnvCrashTest, UnsyncedOverwriteRevertsToSyncedBytes) {
  auto f = create("/d/f");
  ASSERT_TRUE(env_.sync_dir("/d").is_ok());
  ASSERT_TRUE(f->write_at(0, as_bytes("abcdef")).is_ok());
  ASSERT_TRUE(f->sync_data().is_ok());
  ASSERT_TRUE(f->truncate(2).is_ok());
  ASSERT_TRUE(f->write_at(2, as_bytes("XYZWVU")).is_ok());
  env_.crash(99);  // not an append of the synced bytes: no torn tail to keep
  EXPECT_EQ(contents("/d/f"), "abcdef");
}

TEST_F(MemEnvCrashTest, FileWithoutDirectorySyncVanishes) {
  auto f = create("/d/f");
  ASSERT_TRUE(f->write_at(0, as_bytes("abc")).is_ok());
  ASSERT_TRUE(f->sync_data().is_ok());  // data synced, the entry not
  env_.crash();
  EXPECT_FALSE(env_.file_exists("/d/f"));
}

TEST_F(MemEnvCrashTest, DirectoryWithoutParentSyncVanishes) {
  ASSERT_TRUE(env_.create_dir("/d/sub").is_ok());
  ASSERT_TRUE(env_.create_dir("/d/kept").is_ok());
  ASSERT_TRUE(env_.sync_dir("/d").is_ok());
  ASSERT_TRUE(env_.create_dir("/d/lost").is_ok());
  env_.crash();
  EXPECT_TRUE(env_.dir_exists("/d/sub"));
  EXPECT_TRUE(env_.dir_exists("/d/kept"));
  EXPECT_FALSE(env_.dir_exists("/d/lost"));
}

TEST_F(MemEnvCrashTest, UnsyncedRenameAndRemoveAreUndone) {
  auto a = create("/d/a");
  auto b = create("/d/b");
  ASSERT_TRUE(a->write_at(0, as_bytes("A")).is_ok());
  ASSERT_TRUE(a->sync_data().is_ok());
  ASSERT_TRUE(b->write_at(0, as_bytes("B")).is_ok());
  ASSERT_TRUE(b->sync_data().is_ok());
  ASSERT_TRUE(env_.sync_dir("/d").is_ok());
  ASSERT_TRUE(env_.rename("/d/a", "/d/c").is_ok());
  ASSERT_TRUE(env_.remove_file("/d/b").is_ok());
  env_.crash();
  EXPECT_EQ(contents("/d/a"), "A");
  EXPECT_EQ(contents("/d/b"), "B");
  EXPECT_FALSE(env_.file_exists("/d/c"));
}

TEST_F(MemEnvCrashTest, SyncedRenameSurvives) {
  auto a = create("/d/a");
  ASSERT_TRUE(a->write_at(0, as_bytes("A")).is_ok());
  ASSERT_TRUE(a->sync_data().is_ok());
  ASSERT_TRUE(env_.rename("/d/a", "/d/c").is_ok());
  ASSERT_TRUE(env_.sync_dir("/d").is_ok());
  env_.crash();
  EXPECT_FALSE(env_.file_exists("/d/a"));
  EXPECT_EQ(contents("/d/c"), "A");
}

TEST_F(MemEnvCrashTest, WriteFileAtomicallyIsDurable) {
  ASSERT_TRUE(write_file_atomically(env_, "/d/meta", as_bytes("v1")).is_ok());
  env_.crash();
  EXPECT_EQ(contents("/d/meta"), "v1");
  ASSERT_TRUE(write_file_atomically(env_, "/d/meta", as_bytes("v2")).is_ok());
  env_.crash();
  EXPECT_EQ(contents("/d/meta"), "v2");
  EXPECT_FALSE(env_.file_exists("/d/meta.tmp"));
}

TEST_F(MemEnvCrashTest, SeededCrashKeepsAPrefixOfTheUnsyncedTail) {
  std::set<size_t> lengths;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    MemEnv env;
    ASSERT_TRUE(env.create_dir("/d").is_ok());
    ASSERT_TRUE(env.sync_dir("/").is_ok());
    auto f = env.open_file("/d/f", OpenMode::kCreateNew);
    ASSERT_TRUE(f.is_ok());
    ASSERT_TRUE(env.sync_dir("/d").is_ok());
    ASSERT_TRUE((*f)->write_at(0, as_bytes("synced|")).is_ok());
    ASSERT_TRUE((*f)->sync_data().is_ok());
    const std::string tail = "0123456789abcdefghij";
    ASSERT_TRUE((*f)->write_at(7, as_bytes(tail)).is_ok());
    env.crash(seed);
    auto c = env.contents("/d/f");
    ASSERT_TRUE(c.is_ok());
    ASSERT_GE(c->size(), 7u);
    EXPECT_EQ(*c, ("synced|" + tail).substr(0, c->size())) << "seed " << seed;
    lengths.insert(c->size());
    // What was kept is durable now: a second crash keeps it all.
    env.crash();
    EXPECT_EQ(env.contents("/d/f")->size(), c->size());
  }
  EXPECT_GT(lengths.size(), 3u) << "torn tails should vary with the seed";
}

TEST_F(MemEnvCrashTest, CrashReleasesLocks) {
  auto lock = env_.lock_file("/d/.lock");
  ASSERT_TRUE(lock.is_ok());
  env_.crash();
  EXPECT_TRUE(env_.lock_file("/d/.lock").is_ok());
  lock.value().reset();  // releasing the pre-crash lock must not disturb anything
}

TEST_F(MemEnvCrashTest, WriteBudgetFailsWithNoSpaceAndStoresWhatFits) {
  auto f = create("/d/f");
  env_.set_write_budget(10);
  ASSERT_TRUE(f->write_at(0, as_bytes("123456")).is_ok());
  Status s = f->write_at(6, as_bytes("789012"));
  EXPECT_EQ(s.code(), ErrorCode::kNoSpace);
  EXPECT_EQ(contents("/d/f"), "1234567890");
  EXPECT_EQ(f->write_at(10, as_bytes("x")).code(), ErrorCode::kNoSpace);
  env_.set_write_budget(-1);
  EXPECT_TRUE(f->write_at(10, as_bytes("x")).is_ok());
  EXPECT_EQ(contents("/d/f"), "1234567890x");
}

TEST_F(MemEnvCrashTest, FailedSyncsKeepNothingDurable) {
  auto f = create("/d/f");
  ASSERT_TRUE(env_.sync_dir("/d").is_ok());
  ASSERT_TRUE(f->write_at(0, as_bytes("abc")).is_ok());
  env_.set_fail_syncs(true);
  EXPECT_EQ(f->sync_data().code(), ErrorCode::kIoError);
  EXPECT_EQ(env_.sync_dir("/d").code(), ErrorCode::kIoError);
  env_.set_fail_syncs(false);
  env_.crash();
  EXPECT_EQ(contents("/d/f"), "");
}

TEST_F(MemEnvCrashTest, SyncCountCountsFileAndDirectorySyncs) {
  auto f = create("/d/f");
  uint64_t before = env_.sync_count();
  ASSERT_TRUE(f->sync_data().is_ok());
  ASSERT_TRUE(env_.sync_dir("/d").is_ok());
  EXPECT_EQ(env_.sync_count(), before + 2);
}

TEST_F(MemEnvCrashTest, TestHelpersActDurably) {
  auto f = create("/d/f");
  ASSERT_TRUE(env_.sync_dir("/d").is_ok());
  ASSERT_TRUE(env_.set_contents("/d/f", std::string("\x01\x02", 2)).is_ok());
  ASSERT_TRUE(env_.flip_bit("/d/f", 1, 7).is_ok());
  EXPECT_EQ(contents("/d/f"), std::string("\x01\x82", 2));
  EXPECT_EQ(env_.flip_bit("/d/f", 2, 0).code(), ErrorCode::kOutOfRange);
  EXPECT_EQ(env_.flip_bit("/d/none", 0, 0).code(), ErrorCode::kNotFound);
  env_.crash();
  EXPECT_EQ(contents("/d/f"), std::string("\x01\x82", 2));
}

}  // namespace
}  // namespace evert::io
