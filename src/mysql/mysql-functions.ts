// MySQL/MariaDB function lists: the ones with side effects or connection state (primary), and the built-ins a replica may run.

/**
 * Functions that change something, wait on replication, or read state of the connection that ran the
 * previous statement: a read calling one goes to the primary. `GET_LOCK` also pins the session (a named
 * lock lives on its connection). `SLEEP` is not here: add it to `routing.write_functions` to keep it off
 * replicas.
 */
export const MYSQL_WRITE_FUNCTIONS: ReadonlySet<string> = new Set([
  'get_lock', 'release_lock', 'release_all_locks', 'is_free_lock', 'is_used_lock',
  'last_insert_id', 'row_count', 'found_rows',
  'nextval', 'setval', 'lastval', 'next_value_for',
  'master_pos_wait', 'source_pos_wait', 'master_gtid_wait',
  'wait_for_executed_gtid_set', 'wait_until_sql_thread_after_gtids',
  'sys_exec', 'sys_eval', 'load_file',
]) // biome-ignore format: a word list

/** Functions whose effect is a lock held by the session's connection. */
export const MYSQL_LOCK_FUNCTIONS: ReadonlySet<string> = new Set(['get_lock'])
export const MYSQL_UNLOCK_ALL_FUNCTIONS: ReadonlySet<string> = new Set(['release_all_locks'])

/**
 * Built-in functions without side effects. A function that is on neither list (a stored function, a
 * loadable UDF) may write: it goes to the primary unless `routing.read_only_functions` lists it.
 */
export const MYSQL_READ_FUNCTIONS: ReadonlySet<string> = new Set([
  // aggregates and window functions
  'count', 'sum', 'avg', 'min', 'max', 'group_concat', 'json_arrayagg', 'json_objectagg', 'std', 'stddev',
  'stddev_pop', 'stddev_samp', 'var_pop', 'var_samp', 'variance', 'bit_and', 'bit_or', 'bit_xor',
  'row_number', 'rank', 'dense_rank', 'percent_rank', 'cume_dist', 'ntile', 'lag', 'lead', 'first_value',
  'last_value', 'nth_value',
  // control flow and comparison
  'if', 'ifnull', 'nullif', 'coalesce', 'greatest', 'least', 'isnull', 'interval', 'nvl', 'nvl2', 'decode_oracle',
  // strings
  'concat', 'concat_ws', 'length', 'char_length', 'character_length', 'octet_length', 'bit_length', 'lower',
  'upper', 'lcase', 'ucase', 'substring', 'substr', 'mid', 'left', 'right', 'trim', 'ltrim', 'rtrim', 'lpad',
  'rpad', 'replace', 'reverse', 'repeat', 'space', 'locate', 'instr', 'position', 'field', 'find_in_set',
  'format', 'hex', 'unhex', 'ascii', 'ord', 'char', 'elt', 'insert', 'quote', 'soundex', 'strcmp',
  'substring_index', 'regexp_replace', 'regexp_substr', 'regexp_instr', 'regexp_like', 'to_base64',
  'from_base64', 'md5', 'sha1', 'sha', 'sha2', 'crc32', 'bin', 'oct', 'conv', 'collation', 'charset',
  'convert', 'cast', 'binary', 'weight_string', 'natural_sort_key', 'export_set', 'make_set', 'sformat',
  // numbers
  'abs', 'ceil', 'ceiling', 'floor', 'round', 'truncate', 'mod', 'pow', 'power', 'sqrt', 'exp', 'ln', 'log',
  'log2', 'log10', 'sign', 'pi', 'sin', 'cos', 'tan', 'asin', 'acos', 'atan', 'atan2', 'cot', 'degrees',
  'radians', 'rand', 'crc32c', 'sleep',
  // dates and times
  'now', 'current_timestamp', 'current_date', 'current_time', 'curdate', 'curtime', 'sysdate', 'utc_date',
  'utc_time', 'utc_timestamp', 'localtime', 'localtimestamp', 'date', 'time', 'timestamp', 'year', 'month',
  'day', 'dayofmonth', 'dayofweek', 'dayofyear', 'dayname', 'monthname', 'hour', 'minute', 'second',
  'microsecond', 'week', 'weekday', 'weekofyear', 'yearweek', 'quarter', 'date_add', 'date_sub', 'adddate',
  'subdate', 'addtime', 'subtime', 'datediff', 'timediff', 'timestampdiff', 'timestampadd', 'date_format',
  'time_format', 'str_to_date', 'from_unixtime', 'unix_timestamp', 'to_days', 'from_days', 'to_seconds',
  'sec_to_time', 'time_to_sec', 'makedate', 'maketime', 'last_day', 'period_add', 'period_diff',
  'convert_tz', 'extract', 'get_format',
  // JSON
  'json_extract', 'json_unquote', 'json_object', 'json_array', 'json_contains', 'json_contains_path',
  'json_keys', 'json_length', 'json_type', 'json_valid', 'json_quote', 'json_set', 'json_insert',
  'json_replace', 'json_remove', 'json_merge', 'json_merge_patch', 'json_merge_preserve', 'json_search',
  'json_value', 'json_query', 'json_depth', 'json_pretty', 'json_compact', 'json_detailed', 'json_overlaps',
  'json_table', 'json_array_append', 'json_array_insert', 'json_exists',
  // information
  'database', 'schema', 'user', 'current_user', 'session_user', 'system_user', 'version', 'connection_id',
  'uuid', 'uuid_short', 'sys_guid', 'benchmark', 'inet_aton', 'inet_ntoa', 'inet6_aton', 'inet6_ntoa',
  'is_ipv4', 'is_ipv6', 'bin_to_uuid', 'uuid_to_bin', 'default', 'values', 'value',
  // geometry (a few common ones)
  'st_distance', 'st_contains', 'st_within', 'st_astext', 'st_geomfromtext', 'point', 'st_x', 'st_y',
]) // biome-ignore format: a word list
