// Parses SQL text with libpg_query (the PostgreSQL 15 grammar) into evert's
// statements (ast.h). Anything PostgreSQL accepts that evert does not execute
// is a 0A000 (feature_not_supported) error pointing at the construct.
#pragma once

#include <string_view>
#include <vector>

#include "sql/ast.h"

namespace evert::sql {

SqlResult<std::vector<Statement>> parse(std::string_view sql);

}  // namespace evert::sql
