-- 001_initial_schema.sql - core tables: projects, epics, issues, tasks,
-- service_status, comments, and the shared updated_at trigger function.
--
-- Objects are never schema-qualified: the tests apply this file into a
-- private schema through search_path (the extensions stay in public).
-- docs/schema.md describes every table and function.

-- migrate:up
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS vector;

-- Keeps updated_at current on every table that has one (BEFORE UPDATE).
-- Trigger arguments name bookkeeping columns (access_count, last_used_at,
-- ...) whose change alone is not an update of the row's content.
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_NARGS > 0
       AND (to_jsonb(NEW) - TG_ARGV - 'updated_at')
           IS NOT DISTINCT FROM (to_jsonb(OLD) - TG_ARGV - 'updated_at') THEN
        RETURN NEW;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE projects (
    id          uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    name        text NOT NULL CHECK (name <> ''),
    path        text,
    description text,
    status      text NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'paused', 'archived')),
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_projects_name ON projects (name);
CREATE INDEX idx_projects_status ON projects (status);
CREATE TRIGGER trg_projects_updated_at BEFORE UPDATE ON projects
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE epics (
    id              uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    project_id      uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    epic_id         text NOT NULL CHECK (epic_id <> ''),
    title           text NOT NULL,
    description     text,
    status          text NOT NULL DEFAULT 'planned'
                    CHECK (status IN ('planned', 'in_progress', 'blocked', 'completed', 'cancelled')),
    priority        text NOT NULL DEFAULT 'medium'
                    CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    estimated_hours numeric(8,2) CHECK (estimated_hours >= 0),
    actual_hours    numeric(8,2) CHECK (actual_hours >= 0),
    complexity      text CHECK (complexity IN ('trivial', 'simple', 'moderate', 'complex', 'very_complex')),
    dependencies    text[] NOT NULL DEFAULT '{}',
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz
);
CREATE INDEX idx_epics_project_id ON epics (project_id);
CREATE INDEX idx_epics_epic_id ON epics (epic_id);
CREATE INDEX idx_epics_status ON epics (status);
CREATE INDEX idx_epics_priority ON epics (priority);
CREATE TRIGGER trg_epics_updated_at BEFORE UPDATE ON epics
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE issues (
    id           uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    project_id   uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- an issue outlives the epic it was planned under
    epic_id      uuid REFERENCES epics (id) ON DELETE SET NULL,
    issue_number integer CHECK (issue_number > 0),
    title        text NOT NULL,
    description  text,
    status       text NOT NULL DEFAULT 'open'
                 CHECK (status IN ('open', 'in_progress', 'blocked', 'closed')),
    priority     text NOT NULL DEFAULT 'medium'
                 CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    labels       text[] NOT NULL DEFAULT '{}',
    assignee     text,
    github_id    bigint,
    github_url   text,
    metadata     jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    closed_at    timestamptz
);
CREATE INDEX idx_issues_project_id ON issues (project_id);
CREATE INDEX idx_issues_epic_id ON issues (epic_id);
CREATE INDEX idx_issues_status ON issues (status);
CREATE INDEX idx_issues_priority ON issues (priority);
CREATE INDEX idx_issues_github_id ON issues (github_id);
CREATE INDEX idx_issues_labels ON issues USING gin (labels);
CREATE TRIGGER trg_issues_updated_at BEFORE UPDATE ON issues
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE tasks (
    id                uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    project_id        uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- tasks keep their history when the epic or issue above them goes
    epic_id           uuid REFERENCES epics (id) ON DELETE SET NULL,
    issue_id          uuid REFERENCES issues (id) ON DELETE SET NULL,
    title             text NOT NULL,
    description       text,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'in_progress', 'blocked', 'completed', 'cancelled')),
    order_index       integer NOT NULL DEFAULT 0,
    estimated_minutes integer CHECK (estimated_minutes >= 0),
    actual_minutes    integer CHECK (actual_minutes >= 0),
    metadata          jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz
);
CREATE INDEX idx_tasks_project_id ON tasks (project_id);
CREATE INDEX idx_tasks_epic_id ON tasks (epic_id);
CREATE INDEX idx_tasks_issue_id ON tasks (issue_id);
CREATE INDEX idx_tasks_status ON tasks (status);
CREATE INDEX idx_tasks_order_index ON tasks (order_index);
CREATE TRIGGER trg_tasks_updated_at BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE service_status (
    id               uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    project_id       uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    service_name     text NOT NULL,
    status           text NOT NULL DEFAULT 'unknown'
                     CHECK (status IN ('healthy', 'degraded', 'unhealthy', 'stopped', 'unknown')),
    last_check       timestamptz NOT NULL DEFAULT now(),
    response_time_ms integer CHECK (response_time_ms >= 0),
    error_message    text,
    metadata         jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_service_status_project_id ON service_status (project_id);
CREATE INDEX idx_service_status_status ON service_status (status);
CREATE INDEX idx_service_status_last_check ON service_status (last_check);
CREATE TRIGGER trg_service_status_updated_at BEFORE UPDATE ON service_status
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE comments (
    id         uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    issue_id   uuid REFERENCES issues (id) ON DELETE CASCADE,
    task_id    uuid REFERENCES tasks (id) ON DELETE CASCADE,
    author     text NOT NULL,
    content    text NOT NULL,
    github_id  bigint,
    metadata   jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- a comment belongs to an issue, a task, or both
    CONSTRAINT comments_target_check CHECK (issue_id IS NOT NULL OR task_id IS NOT NULL)
);
CREATE INDEX idx_comments_issue_id ON comments (issue_id);
CREATE INDEX idx_comments_task_id ON comments (task_id);
CREATE INDEX idx_comments_created_at ON comments (created_at);
CREATE TRIGGER trg_comments_updated_at BEFORE UPDATE ON comments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- migrate:down
DROP TABLE comments;
DROP TABLE service_status;
DROP TABLE tasks;
DROP TABLE issues;
DROP TABLE epics;
DROP TABLE projects;
DROP FUNCTION set_updated_at();
