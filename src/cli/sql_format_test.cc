#include "cli/sql_format.h"

#include <gtest/gtest.h>

#include <string>

namespace evert::cli {
namespace {

// The expected tables below are psql 15's output for the same values
// (aligned format, border 1), copied byte for byte.

TEST(SqlFormatTest, TableAsPsqlPrintsIt) {
  SqlTable t{{"a", "bcd", "n"}, {true, false, false}, {{"1", "xx", std::nullopt}}};
  EXPECT_EQ(format_table(t),
            " a | bcd | n \n"
            "---+-----+---\n"
            " 1 | xx  | \n"
            "(1 row)\n\n");
}

TEST(SqlFormatTest, NumbersAreRightAlignedAndHeadersCentred) {
  SqlTable t{{"a", "zzz"}, {false, true}, {{"x", "1"}, {"y", "22222"}}};
  EXPECT_EQ(format_table(t),
            " a |  zzz  \n"
            "---+-------\n"
            " x |     1\n"
            " y | 22222\n"
            "(2 rows)\n\n");
}

TEST(SqlFormatTest, NullInRightAlignedLastColumnIsPadded) {
  SqlTable t{{"a", "zzz"}, {false, true}, {{"x", std::nullopt}}};
  EXPECT_EQ(format_table(t),
            " a | zzz \n"
            "---+-----\n"
            " x |    \n"
            "(1 row)\n\n");
}

TEST(SqlFormatTest, MultiLineCellsEndLinesWithPlus) {
  SqlTable t{{"m", "n"}, {false, true}, {{"a\nb", "1"}, {"q", std::nullopt}}};
  EXPECT_EQ(format_table(t),
            " m | n \n"
            "---+---\n"
            " a+| 1\n"
            " b | \n"
            " q |  \n"
            "(2 rows)\n\n");
}

TEST(SqlFormatTest, MultiLineCellInLastColumn) {
  SqlTable t{{"a", "m"}, {true, false}, {{"12345", "a\nb"}}};
  EXPECT_EQ(format_table(t),
            "   a   | m \n"
            "-------+---\n"
            " 12345 | a+\n"
            "       | b\n"
            "(1 row)\n\n");
}

TEST(SqlFormatTest, EmptyLineInsideCellAndWideHeader) {
  SqlTable t{{"x", "yy"}, {false, false}, {{"a\n\nb", "longer header"}}};
  EXPECT_EQ(format_table(t),
            " x |      yy       \n"
            "---+---------------\n"
            " a+| longer header\n"
            "  +| \n"
            " b | \n"
            "(1 row)\n\n");
}

TEST(SqlFormatTest, WidthCountsCharactersNotBytes) {
  SqlTable t{{"frm", "u"}, {false, false}, {{"\xc3\xa9\xc3\xa9", "\xc3\xa9"}}};
  EXPECT_EQ(format_table(t),
            " frm | u \n"
            "-----+---\n"
            " \xc3\xa9\xc3\xa9  | \xc3\xa9\n"
            "(1 row)\n\n");
}

TEST(SqlFormatTest, NoRows) {
  SqlTable t{{"id"}, {}, {}};
  EXPECT_EQ(format_table(t),
            " id \n"
            "----\n"
            "(0 rows)\n\n");
}

// ------------------------------------------------------------ error position

TEST(SqlFormatTest, ErrorPositionOnFirstLine) {
  std::string sql = "select * frm t;";
  EXPECT_EQ(format_error_position(sql, int64_t(sql.find("frm")) + 1),
            "LINE 1: select * frm t;\n"
            "                 ^\n");
}

TEST(SqlFormatTest, ErrorPositionOnLaterLineCountsFromRequestStart) {
  std::string sql = "select 1;\nselect * from\n  nope where x";
  EXPECT_EQ(format_error_position(sql, int64_t(sql.find("nope")) + 1),
            "LINE 3:   nope where x\n"
            "          ^\n");
}

TEST(SqlFormatTest, ErrorPositionTabsShowAsSpaces) {
  std::string sql = "select\t* \tfrm t;";
  EXPECT_EQ(format_error_position(sql, int64_t(sql.find("frm")) + 1),
            "LINE 1: select *  frm t;\n"
            "                  ^\n");
}

TEST(SqlFormatTest, ErrorPositionCountsCharacters) {
  // 'é' is two bytes and one character: "frm" starts at character 12.
  std::string sql = "select '\xc3\xa9' frm";
  EXPECT_EQ(format_error_position(sql, 12),
            "LINE 1: select '\xc3\xa9' frm\n"
            "                   ^\n");
}

TEST(SqlFormatTest, ErrorPositionJustPastTheEnd) {
  std::string sql = "select 1 +\n";
  // PostgreSQL's "syntax error at end of input" points one past the text.
  EXPECT_EQ(format_error_position(sql, 12),
            "LINE 2: \n"
            "        ^\n");
  EXPECT_EQ(format_error_position("select (", 9),
            "LINE 1: select (\n"
            "                ^\n");
}

TEST(SqlFormatTest, ErrorPositionOutsideTheTextGivesNothing) {
  EXPECT_EQ(format_error_position("select", 0), "");
  EXPECT_EQ(format_error_position("select", 8), "");
  EXPECT_EQ(format_error_position("", 2), "");
}

// --------------------------------------------------------------- answers

TEST(SqlFormatTest, AnswerFromTheDocs) {
  std::string body = R"({"results": [
    {"command": "SELECT", "columns": ["customer", "n"], "types": ["text", "bigint"], "rows": [["alice", 3]]},
    {"command": "INSERT", "rows_affected": 2,
     "offsets": [{"topic": "orders", "partition": 0, "offset": 41}, {"topic": "orders", "partition": 3, "offset": 17}]}
  ]})";
  auto out = render_sql_answer(body, "...");
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out->out,
            " customer | n \n"
            "----------+---\n"
            " alice    | 3\n"
            "(1 row)\n\n"
            "INSERT 0 2\n"
            "offsets: orders/0@41 orders/3@17\n");
  EXPECT_EQ(out->err, "");
  EXPECT_FALSE(out->failed);
}

TEST(SqlFormatTest, CommandTags) {
  std::string body = R"({"results": [{"command": "CREATE TABLE"}, {"command": "UPDATE", "rows_affected": 3},
    {"command": "DELETE", "rows_affected": 0, "offsets": []}, {"command": "DROP TABLE", "rows_affected": null}]})";
  auto out = render_sql_answer(body, "...");
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out->out, "CREATE TABLE\nUPDATE 3\nDELETE 0\nDROP TABLE\n");
}

TEST(SqlFormatTest, CellValuesAsPsqlShowsThem) {
  std::string body = R"({"results": [{"command": "SELECT", "columns": ["b", "d", "big", "j", "n"],
    "rows": [[true, 1.5, 18446744073709551615, [1, "x"], null], [false, 3.0, -7, {"k": null}, null]]}]})";
  auto out = render_sql_answer(body, "...");
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out->out,
            " b |  d  |         big          |     j      | n \n"
            "---+-----+----------------------+------------+---\n"
            " t | 1.5 | 18446744073709551615 | [1,\"x\"]    | \n"
            " f |   3 |                   -7 | {\"k\":null} | \n"
            "(2 rows)\n\n");
}

TEST(SqlFormatTest, ErrorAfterResultsDone) {
  std::string sql = "CREATE TABLE t (id bigint);\nSELECT * FRM t";
  std::string body = R"({"error": {"code": "42601", "message": "syntax error at or near \"FRM\"", "position": )" +
                     std::to_string(sql.find("FRM") + 1) + R"(, "statement": 1},
    "results": [{"command": "CREATE TABLE"}]})";
  auto out = render_sql_answer(body, sql);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_TRUE(out->failed);
  EXPECT_EQ(out->out, "CREATE TABLE\n");
  EXPECT_EQ(out->err,
            "ERROR:  syntax error at or near \"FRM\"\n"
            "LINE 2: SELECT * FRM t\n"
            "                 ^\n"
            "SQLSTATE: 42601\n");
}

TEST(SqlFormatTest, ErrorWithoutPosition) {
  auto out = render_sql_answer(
      R"({"error": {"code": "42P01", "message": "relation \"nope\" does not exist", "position": null}, "results": []})",
      "SELECT * FROM nope");
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_TRUE(out->failed);
  EXPECT_EQ(out->out, "");
  EXPECT_EQ(out->err, "ERROR:  relation \"nope\" does not exist\nSQLSTATE: 42P01\n");
}

TEST(SqlFormatTest, ErrorPositionBeyondTheTextIsStillReported) {
  auto out = render_sql_answer(R"({"error": {"code": "XX000", "message": "m", "position": 99}})", "x");
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out->err, "ERROR:  m\nPOSITION: 99\nSQLSTATE: XX000\n");
}

TEST(SqlFormatTest, HttpErrorCodesAreNotCalledSqlstates) {
  auto out = render_sql_answer(R"({"error": {"code": "not_found", "message": "no such endpoint: /v1/sql"}})", "x");
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_TRUE(out->failed);
  EXPECT_EQ(out->err, "ERROR:  no such endpoint: /v1/sql\nCODE: not_found\n");
}

TEST(SqlFormatTest, MalformedAnswersAreReportedNotPrinted) {
  for (const char* body : {
           "",
           "not json",
           "[1]",
           R"({"ok": true})",
           R"({"results": {}})",
           R"({"results": [1]})",
           R"({"results": [{"rows_affected": 1}]})",
           R"({"results": [{"command": "SELECT", "columns": ["a"], "rows": [[1, 2]]}]})",
           R"({"results": [{"command": "SELECT", "columns": ["a"], "rows": [1]}]})",
           R"({"results": [{"command": "SELECT", "columns": [1]}]})",
           R"({"results": [{"command": "INSERT", "rows_affected": "2"}]})",
           R"({"results": [{"command": "INSERT", "offsets": [{"topic": "t"}]}]})",
           R"({"error": "boom"})",
           R"({"error": {"code": "42601"}})",
       }) {
    auto out = render_sql_answer(body, "x");
    ASSERT_FALSE(out.is_ok()) << body;
    EXPECT_EQ(out.status().code(), ErrorCode::kCorruption) << body;
  }
}

}  // namespace
}  // namespace evert::cli
