import { Injectable } from '@angular/core';
import { HttpClient } from '@angular/common/http';
import { Observable } from 'rxjs';

export enum Status {
  Active = 'active',
  Archived = 'archived',
}

@Injectable({ providedIn: 'root' })
export class ProjectService {
  constructor(private readonly http: HttpClient) {}

  list(status: Status = Status.Active): Observable<Project[]> {
    return this.http.get<Project[]>(`/api/projects?status=${status}`);
  }
}
